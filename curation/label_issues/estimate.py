"""How likely a label is wrong: a noise channel fitted to the out-of-sample probabilities.

The model behind the probabilities never saw the sample, so its belief about the sample's class
does not depend on the label it was given. Model the given label as the true class, except that a
fraction `noise_rate` of the labels were replaced by another class at random:

    P(given = y | x) = q_y (1 - noise_rate) + (1 - q_y) noise_rate / (K - 1),

with q = softmax(log p / temperature), the model's probabilities sharpened or softened to what the
labels bear out. Both numbers are fitted by maximum likelihood on the split's own labels: the
temperature from how often the model's confident calls agree with the labels, the noise rate from
the labels no confidence explains. Then, by Bayes,

    P(label wrong | x, y) = (1 - q_y) noise_rate / (K - 1) / P(given = y | x).

On a clean set the fitted noise rate is near zero and so is every estimate, however hard an
image is for the model; with 10% of labels flipped it comes out near 0.1. The estimate is as good
as the probabilities: bench/RESULTS.md and each report's noise-injection check measure it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_LOG_PROB = np.log(1e-9)


@dataclass(frozen=True)
class NoiseChannel:
    temperature: float
    noise_rate: float
    n_classes: int

    def sharpened(self, pred_probs: np.ndarray) -> np.ndarray:
        logits = np.maximum(np.log(np.clip(pred_probs, 1e-300, None)), MIN_LOG_PROB) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        q = np.exp(logits)
        return q / q.sum(axis=1, keepdims=True)

    def wrong_probability(self, pred_probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """P(label wrong), shape (n,), for int labels (n,) and probabilities (n, K)."""
        q_given = self.sharpened(pred_probs)[np.arange(len(labels)), labels]
        flipped_in = (1 - q_given) * self.noise_rate / max(self.n_classes - 1, 1)
        return flipped_in / (q_given * (1 - self.noise_rate) + flipped_in)


def _negative_log_likelihood(pred_probs: np.ndarray, labels: np.ndarray, channel: NoiseChannel) -> float:
    k = channel.n_classes
    q_given = channel.sharpened(pred_probs)[np.arange(len(labels)), labels]
    return -np.log(q_given * (1 - channel.noise_rate) + (1 - q_given) * channel.noise_rate / (k - 1) + 1e-300).sum()


def fit_noise_channels(splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, NoiseChannel]:
    """One temperature for all splits (it is the model's, learnt where there are most labels) and a noise
    rate per split (each split's labels may come from another process), by maximum likelihood.

    splits: name -> (pred_probs (n, K), int labels (n,)). A split of a few dozen images then only has
    to say how noisy it is, not also how sharp the model is."""
    from scipy.optimize import minimize

    names = list(splits)
    k = next(iter(splits.values()))[0].shape[1]

    def channels(theta) -> dict[str, NoiseChannel]:  # noise rate kept below 1/2 by the logistic
        return {name: NoiseChannel(float(np.exp(theta[0])), float(0.5 / (1 + np.exp(-theta[1 + i]))), k)
                for i, name in enumerate(names)}

    def objective(theta) -> float:
        fitted = channels(theta)
        return sum(_negative_log_likelihood(*splits[name], fitted[name]) for name in names)

    # the likelihood can be flat along a ridge of temperature against noise: start from a few places
    starts = ([0.0] + [-3.0] * len(names), [0.0] + [-1.0] * len(names), [-0.7] + [-4.0] * len(names))
    best = min((minimize(objective, np.array(start), method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-4,
                                                                                    "fatol": 1e-6})
                for start in starts), key=lambda result: result.fun)
    return channels(best.x)


def fit_noise_channel(pred_probs: np.ndarray, labels: np.ndarray) -> NoiseChannel:
    """Maximum-likelihood temperature and noise rate for one split's labels and probabilities."""
    return fit_noise_channels({"split": (pred_probs, np.asarray(labels, dtype=int))})["split"]


def label_log_likelihood(splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean log-likelihood per label of the given labels under the noise channels fitted to these
    probabilities: how well a source of out-of-sample probabilities explains the labels, noise
    allowed. Of two sources for the same samples, the higher explains them better."""
    channels = fit_noise_channels(splits)
    count = sum(len(labels) for _, labels in splits.values())
    total = sum(_negative_log_likelihood(probs, np.asarray(labels, dtype=int), channels[name])
                for name, (probs, labels) in splits.items())
    return -total / max(count, 1)


def better_explained(candidates: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]) -> tuple[str, dict[str, float]]:
    """Of several sources of probabilities for the same samples (name -> split -> (probs, labels)),
    the one whose labels are likeliest under its fitted noise channels (the first on a tie), and
    every source's mean log-likelihood per label."""
    scores = {name: round(float(label_log_likelihood(splits)), 4) for name, splits in candidates.items() if splits}
    return max(scores, key=lambda name: scores[name]), scores
