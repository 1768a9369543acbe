"""An exponential moving average of the weights over the last epochs of fine-tuning (timm's ModelEmaV3).

On 114 test images the error of one lite2 run swings by 3-5 points from one late epoch to the next
(batch 8: noisy steps and batch-norm statistics); the average of the last epochs' weights is the
steadier model. While active, validation and the exported model use the averaged weights.
"""

from __future__ import annotations


def ema_decay(window_epochs: float, steps_per_epoch: int) -> float:
    """The per-step decay whose averaging window (1 / (1 - decay) steps) spans `window_epochs`."""
    if window_epochs <= 0:
        raise ValueError(f"the averaging window must be positive, not {window_epochs}")
    return 1.0 - 1.0 / max(1.0, window_epochs * steps_per_epoch)


def weight_average_callback(window_epochs: float):
    """A fastai callback keeping the average; pass it to one fit (a local class does not pickle, so
    it is never part of the exported learner)."""
    from fastai.callback.core import Callback

    class WeightAverage(Callback):
        order = 65  # after the optimiser step, before the EpochLog reads validation metrics

        def before_fit(self):
            from timm.utils import ModelEmaV3

            decay = ema_decay(window_epochs, len(self.learn.dls.train))
            self.average = ModelEmaV3(self.learn.model, decay=decay)
            self.training_state = None

        def after_step(self):
            self.average.update(self.learn.model)

        def before_validate(self):
            # the average stays loaded until the next epoch trains, so that a SaveModelCallback
            # checkpoints (and later restores) averaged weights
            self.training_state = {k: v.clone() for k, v in self.learn.model.state_dict().items()}
            self.learn.model.load_state_dict(self.average.module.state_dict())

        def before_train(self):
            if self.training_state is not None:
                self.learn.model.load_state_dict(self.training_state)
                self.training_state = None

        def after_fit(self):
            if self.training_state is None:  # no validation ran after the last step
                self.learn.model.load_state_dict(self.average.module.state_dict())
            self.training_state = None
            del self.average

    return WeightAverage()
