"""Probabilities a person can read as probabilities, and a set of classes that holds the truth at a
stated rate.

- Temperature scaling (Guo et al. 2017): one temperature T, fitted by maximum likelihood on held-out
  predictions, divides the model's log-probabilities; the ranking never changes, the confidence does.
- Split conformal prediction, LAC scores (Sadinle et al. 2019): on the same held-out predictions the
  score of a sample is 1 - p(true class); with q the ceil((n+1)(1-alpha))/n quantile of those
  scores, the set {k : p_k >= 1 - q} holds the true class with probability >= 1 - alpha for a new
  photo from the same distribution as the held-out ones. "adidas or nike (95%)" instead of a guess.

The held-out predictions are the fold models' out-of-fold ones (training/oof.parquet) when the
training ran with folds, else the trained model's on the splits it never trained on
(training/predictions.parquet). When the app serves the model with its companion (an ensemble), they
are the ensemble's on those splits (predictions.parquet's ensemble_p_<class>): a calibration belongs
to the probabilities it was fitted on. Which one is said in the app's `model` field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curation.errors import CurationError

COVERAGE = 0.95


@dataclass(frozen=True)
class Calibration:
    temperature: float
    threshold: float  # a class is in the prediction set when its calibrated probability >= this
    coverage: float
    source: str  # which held-out predictions it was fitted on
    n: int

    def probabilities(self, log_probs: np.ndarray) -> np.ndarray:
        scaled = log_probs / self.temperature
        scaled = scaled - scaled.max(axis=-1, keepdims=True)
        exp = np.exp(scaled)
        return exp / exp.sum(axis=-1, keepdims=True)

    def prediction_set(self, probs: np.ndarray) -> np.ndarray:
        """Indices of the classes in the set, most probable first; never empty (the top class at least)."""
        order = np.argsort(-probs)
        chosen = [k for k in order if probs[k] >= self.threshold]
        return np.array(chosen or [order[0]])

    def to_dict(self) -> dict:
        return {"temperature": round(self.temperature, 4), "set_threshold": round(self.threshold, 4),
                "coverage": self.coverage, "fitted_on": self.source, "n": self.n}


def fit_temperature(log_probs: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 that minimises the negative log-likelihood of softmax(log_probs / T)."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        scaled = log_probs / math.exp(log_t)
        scaled = scaled - scaled.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scaled).sum(axis=1))
        return float(-(scaled[np.arange(len(labels)), labels] - log_norm).mean())

    return math.exp(minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded").x)


def conformal_threshold(probs: np.ndarray, labels: np.ndarray, coverage: float) -> float:
    """1 - q, q the finite-sample-corrected quantile of the LAC scores 1 - p(true class)."""
    scores = 1.0 - probs[np.arange(len(labels)), labels]
    n = len(scores)
    rank = math.ceil((n + 1) * coverage)
    q = 1.0 if rank > n else float(np.sort(scores)[rank - 1])
    return 1.0 - q


def held_out_predictions(model_dir: Path, ensemble: bool = False) -> tuple[pd.DataFrame, str]:
    """(frame with label and p_<class> columns, where it came from); the ensemble's as p_<class>."""
    oof, predictions = model_dir / "oof.parquet", model_dir / "predictions.parquet"
    if oof.is_file() and not ensemble:
        return pd.read_parquet(oof), "out-of-fold predictions of the fold models (oof.parquet)"
    if predictions.is_file():
        frame = pd.read_parquet(predictions)
        frame = frame[frame["split"] != "train"]
        if not ensemble:
            return frame, "the model's predictions on the splits it never trained on (predictions.parquet)"
        ensemble_columns = [c for c in frame.columns if c.startswith("ensemble_p_")]
        if ensemble_columns:
            frame = frame.drop(columns=[c for c in frame.columns if c.startswith("p_")])
            return (frame.rename(columns={c: c.removeprefix("ensemble_") for c in ensemble_columns}),
                    "the ensemble's predictions (model and companion) on the splits neither trained on "
                    "(predictions.parquet)")
        raise CurationError(f"{predictions} has no ensemble columns for the companion beside the model: run the "
                            "evaluation again (python -m training.evaluate), or serve the model alone (--no-companion)")
    raise CurationError(f"no held-out predictions in {model_dir} to calibrate on: run the evaluation "
                        "(python -m training.evaluate) or train with --folds")


def fit_calibration(model_dir: Path, classes: list[str], coverage: float = COVERAGE,
                    ensemble: bool = False) -> Calibration:
    frame, source = held_out_predictions(model_dir, ensemble)
    frame = frame[frame["label"].astype(str).isin(classes)]
    columns = [f"p_{c}" for c in classes]
    frame = frame[frame[columns].notna().all(axis=1)]
    if len(frame) < 10:
        raise CurationError(f"only {len(frame)} held-out predictions in {model_dir}: too few to calibrate on")
    probs = frame[columns].to_numpy(dtype="float64")
    labels = frame["label"].astype(str).map({c: i for i, c in enumerate(classes)}).to_numpy()
    log_probs = np.log(np.clip(probs, 1e-12, 1.0))
    temperature = fit_temperature(log_probs, labels)
    scaled = Calibration(temperature, 0.0, coverage, source, len(frame)).probabilities(log_probs)
    return Calibration(temperature, conformal_threshold(scaled, labels, coverage), coverage, source, len(frame))
