"""Training and honest evaluation of a fastai + timm image classifier on a scanned dataset.

`training.train` trains (and optionally cross-validates with `--folds K`), `training.evaluate`
evaluates an exported model on every non-train split, `training.oof.read_oof` gives the
out-of-fold probabilities later stages (label issues) need. Heavy imports (torch, fastai, timm)
happen inside functions so that importing this package stays cheap.
"""
