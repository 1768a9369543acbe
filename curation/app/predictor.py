"""One photo in, the brand and whether to trust it out.

`TrustedPredictor.load(...)` reads everything once (the model, its companion when one was trained
beside it, their calibration, the reference images' vectors, the duplicate index, the error slices);
`predict(data)` answers one upload with the JSON fields of the app's API (see curation/app/__init__.py).
With a companion (training.companion) the answer is the ensemble's, the mean of both models'
probabilities, as training.evaluate scores it: over six training runs it erred on 5.1 % of the shoes
test split on average, the model alone on 7.8 % (bench/RESULTS.md).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from curation.app.calibration import COVERAGE, Calibration, fit_calibration
from curation.app.evidence import CopyFinder, ReferenceImages, build_references, photo_evidence
from curation.app.inputs import Photo, read_photo
from curation.app.model_runner import CompanionRunner, ModelRunner


# lite0 alone: the leakage audit's vectors (cached by it). On the shoes bench it flags the same photos
# of other things (19/19) and no shoe (0/114), like the label stage's three backbones side by side, at
# 46 ms an answer against 81 (bench/RESULTS.md); --evidence takes the three.
EVIDENCE_EMBEDDINGS = "tf_efficientnet_lite0"


class QueryEmbedder:
    """The label stage's combined vector (and lite0's own) for one photo, as combined_vectors makes them."""

    def __init__(self, spec: str):
        from curation.embeddings import model_names
        from curation.inference import extractor_for
        from curation.models import load_model

        self.names = model_names(spec)
        self.extractors = [extractor_for(load_model(name)) for name in self.names]

    def __call__(self, image) -> tuple[np.ndarray, np.ndarray]:
        parts = []
        for pixels_of, features_of in self.extractors:
            vector = features_of(pixels_of(image)[None])[0]
            parts.append(vector / max(float(np.linalg.norm(vector)), 1e-12))
        combined = np.hstack(parts) / np.sqrt(len(parts))
        return combined.astype("float32"), parts[self.names.index("tf_efficientnet_lite0")]


@dataclass
class TrustedPredictor:
    dataset: str
    root: Path
    model_dir: Path
    metadata: dict
    runner: ModelRunner
    calibration: Calibration
    references: ReferenceImages
    copies: CopyFinder
    embedder: QueryEmbedder
    companion: Any = None  # model_runner.CompanionRunner, or None to serve the model alone
    started_seconds: float = 0.0
    # one answer at a time: the OpenVINO requests and the duplicate index are not shared between threads
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, data: str, *, reports_dir: Path = Path("reports"), model_dir: Path | None = None,
             cache_dir: Path | None = None, coverage: float = COVERAGE,
             evidence: str = EVIDENCE_EMBEDDINGS, companion: bool = True) -> "TrustedPredictor":
        """companion False serves the model alone even where a companion was trained beside it."""
        from curation.cache import ContentCache
        from curation.scan import scan_dataset
        from training.companion import load_companion
        from training.export import load_trained

        began = time.perf_counter()
        with ContentCache(cache_dir) as cache:
            scanned = scan_dataset(data, reports_dir=Path(reports_dir), cache=cache)
            model_dir, metadata, learn = load_trained(model_dir, scanned.report_dir)
            classes = [str(c) for c in metadata["classes"]]
            references = build_references(scanned.table, scanned.dataset.root, cache=cache,
                                          report_dir=scanned.report_dir, classes=classes, spec=evidence)
            copies = CopyFinder(references, scanned.dataset.root, cache)
        partner = load_companion(model_dir, classes) if companion else None
        predictor = cls(scanned.name, scanned.dataset.root, model_dir, metadata, ModelRunner(learn, metadata["image_size"]),
                        fit_calibration(model_dir, classes, coverage, ensemble=partner is not None), references,
                        copies, QueryEmbedder(evidence), CompanionRunner(partner) if partner else None)
        predictor.predict_photo(read_photo(_warm_up_image()))  # first-call costs (graph compiles) paid here
        predictor.started_seconds = round(time.perf_counter() - began, 1)
        return predictor

    @property
    def classes(self) -> list[str]:
        return self.runner.classes

    def model_info(self) -> dict[str, Any]:
        keys = ("arch", "weights_source", "image_size", "classes", "created", "selected_epoch")
        info = {k: self.metadata.get(k) for k in keys}
        info["training_data_hash"] = self.metadata.get("training_data", {}).get("hash")
        info["calibration"] = self.calibration.to_dict()
        info["companion"] = self.companion.summary if self.companion is not None else None
        info["dataset"] = self.dataset
        info["train_split"] = self.references.train_split
        return info

    def predict(self, data: bytes) -> dict[str, Any]:
        """The answer for one upload (raises inputs.BadInput for a file that is no usable photo)."""
        return self.predict_photo(read_photo(data))

    def predict_photo(self, photo: Photo) -> dict[str, Any]:
        with self._lock:
            return self._answer(photo)

    def log_probabilities(self, images: list) -> np.ndarray:
        """(len(images), K), before calibration: the model's own, or with a companion the log of the
        ensemble's (the mean of both models' probabilities)."""
        from training.companion import ensemble_probabilities

        log_probs = self.runner.log_probs(images)
        if self.companion is None:
            return log_probs
        mean = ensemble_probabilities(np.exp(log_probs), self.companion.probabilities(images))
        return np.log(np.clip(mean, 1e-12, 1.0))

    def _answer(self, photo: Photo) -> dict[str, Any]:
        log_probs = self.log_probabilities([photo.image])[0]
        probs = self.calibration.probabilities(log_probs)
        in_set = self.calibration.prediction_set(probs)
        vector, lite0 = self.embedder(photo.image)
        evidence = photo_evidence(self.references, vector)
        copy_of = self.copies.copy_of(photo.data, photo.pixel_hash, photo.image, lite0)
        answer = {
            "label": self.classes[int(np.argmax(probs))],
            "probabilities": {c: round(float(p), 4) for c, p in zip(self.classes, probs)},
            "prediction_set": [self.classes[k] for k in in_set],
            "coverage": self.calibration.coverage,
            "no_class": evidence.no_class,
            "no_class_score": evidence.no_class_score,
            "class_affinity": evidence.class_affinity,
            "nearest": evidence.nearest,
            "copy_of": copy_of,
            "slice": evidence.slice,
            "notes": photo.notes,
            "model": self.model_info(),
        }
        answer["verdict"] = verdict(answer)
        return answer


def verdict(answer: dict) -> dict:
    """One line a person reads first: trust the answer or not, and why."""
    reasons = []
    if answer["no_class"]:
        reasons.append(f"the photo is unlike every class ({answer['no_class_score']:.1f} deviations below the "
                       "training images' affinity): it may show none of them")
    if len(answer["prediction_set"]) > 1:
        reasons.append(f"{' or '.join(answer['prediction_set'])} at {answer['coverage']:.0%}: the model cannot "
                       "tell these apart here")
    copy = answer["copy_of"]
    if copy:
        seen = ("the model trained on it" if copy["split"] == answer["model"].get("train_split", "train")
                else f"an image of the {copy['split']} split" if copy["split"] else "an image of the dataset")
        reasons.append(f"a copy ({copy['kind'].replace('_', '-')}) of {copy['path']}, {seen}: "
                       "its answer says nothing of how the model does on new photos")
    if answer["slice"]:
        reasons.append(f"like error slice {answer['slice']['id']}, where the model is right "
                       f"{answer['slice']['accuracy']:.0%} of the time")
    level = "do not trust" if answer["no_class"] else "unsure" if reasons else "trust"
    return {"level": level, "reasons": reasons}


def _warm_up_image() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 200, 200)).save(buffer, "PNG")
    return buffer.getvalue()
