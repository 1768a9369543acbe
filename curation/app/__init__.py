"""The little app: drop a photo, get the class, and whether to trust the answer.

`python -m curation.app DATA` serves the trained model (curation/app/server.py), with its companion
model as an ensemble when one was trained beside it (training.companion). Each answer holds:
- `label`, `probabilities` (temperature-calibrated) and `prediction_set` at `coverage`
  (split conformal, calibration.py);
- `no_class` and `no_class_score`: the label stage's images-of-no-class rule (evidence.py);
- `nearest`: the nearest training images (`path`, `label`, `similarity`);
- `copy_of`: null, or the dataset image it copies (`path`, `kind`) by the duplicate engine;
- `slice`: null, or the error slice it falls in (`id`, `description`, `accuracy`);
- `verdict`: trust, unsure or do not trust, with the reasons; `notes`: how the file was read;
- `model`: what model.json says, the calibration, and `companion` (null, or what the companion's
  summary says: the answer is then the mean of both models' probabilities, calibrated as one).
"""
