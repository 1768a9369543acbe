"""The noise-injection check: flip a known few labels of the dataset itself and see what the estimate makes of them.

For each round, `rate` of the split's labels (at least `minimum`) are moved to another class at
random; the out-of-sample probabilities are recomputed with the flipped labels (same folds, same
copy groups), the noise channel refitted, and the estimate read off. Reported per round: how many
flips the default list (estimate >= the threshold) finds, how many of its flags are not flips (nor
already flagged without the flips), the noise rate estimated before and after, and the AUROC of the
estimate. This is the reliability the report states beside every estimate, measured on this
dataset's own images rather than on a benchmark's.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from curation.label_issues.estimate import fit_noise_channel


def flip_labels(labels: np.ndarray, n_classes: int, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(flipped labels, mask of flipped rows): `count` rows each moved to another class at random."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(labels), size=min(count, len(labels)), replace=False)
    flipped = labels.copy()
    flipped[chosen] = (labels[chosen] + rng.integers(1, n_classes, size=len(chosen))) % n_classes
    mask = np.zeros(len(labels), bool)
    mask[chosen] = True
    return flipped, mask


def injection_check(labels: np.ndarray, n_classes: int, probabilities_for: Callable[[np.ndarray, int], np.ndarray],
                    already_flagged: np.ndarray, *, threshold: float, rate: float = 0.05, minimum: int = 5,
                    rounds: int = 2) -> dict:
    """probabilities_for(labels, seed) -> out-of-sample probabilities for those labels."""
    from sklearn.metrics import roc_auc_score

    count = max(minimum, int(round(rate * len(labels))))
    results = []
    for seed in range(rounds):
        flipped, mask = flip_labels(labels, n_classes, count, seed)
        probs = probabilities_for(flipped, seed)
        channel = fit_noise_channel(probs, flipped)
        estimate = channel.wrong_probability(probs, flipped)
        flags = estimate >= threshold
        results.append({"flipped": int(mask.sum()), "found": int((flags & mask).sum()),
                        "other_flags": int((flags & ~mask & ~already_flagged).sum()),
                        "noise_rate": round(channel.noise_rate, 4),
                        "auroc": round(float(roc_auc_score(mask, estimate)), 4)})
    flipped_total = sum(r["flipped"] for r in results)
    found = sum(r["found"] for r in results)
    flags = found + sum(r["other_flags"] for r in results)
    return {"rounds": results, "rate": rate, "recall": round(found / flipped_total, 3) if flipped_total else None,
            "precision": round(found / flags, 3) if flags else None,
            "auroc": round(float(np.mean([r["auroc"] for r in results])), 3) if results else None}
