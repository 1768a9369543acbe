"""The weight-averaging callback in a real fastai fit of a small linear model on synthetic data."""

from __future__ import annotations

import pytest
import torch

from training.config import TrainConfig
from training.weight_average import ema_decay, weight_average_callback


def _learner():
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    from fastai.optimizer import SGD

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=generator)
    y = (x[:, 0] > 0).long()
    data = [(a, b) for a, b in zip(x, y)]
    dls = DataLoaders.from_dsets(data[:48], data[48:], bs=8, shuffle=False, device="cpu")
    model = torch.nn.Linear(4, 2)
    return Learner(dls, model, loss_func=torch.nn.CrossEntropyLoss(), opt_func=SGD, lr=0.5)


def _recorder():
    from fastai.callback.core import Callback

    class Trajectory(Callback):
        """The training weights after every step and at the start of every training epoch."""

        order = 70  # after WeightAverage (65): sees what it leaves loaded

        def before_fit(self):
            self.steps, self.epoch_starts = [], []

        def before_train(self):
            self.epoch_starts.append(self.learn.model.weight.detach().clone())

        def after_step(self):
            self.steps.append(self.learn.model.weight.detach().clone())

    return Trajectory()


def test_the_fit_ends_on_the_moving_average_and_trains_on_the_raw_weights():
    learn = _learner()
    start = learn.model.weight.detach().clone()
    trajectory = _recorder()
    learn.fit(3, cbs=[weight_average_callback(1.0), trajectory])

    decay = ema_decay(1.0, len(learn.dls.train))  # 6 steps per epoch
    expected = start
    for weights in trajectory.steps:
        expected = decay * expected + (1 - decay) * weights
    assert len(trajectory.steps) == 18
    assert torch.allclose(learn.model.weight, expected, atol=1e-6)
    assert not torch.allclose(learn.model.weight, trajectory.steps[-1], atol=1e-3)  # the average, not the last step
    # each epoch resumes from the last raw weights, not from the average shown to validation
    assert torch.equal(trajectory.epoch_starts[1], trajectory.steps[5])
    assert torch.equal(trajectory.epoch_starts[2], trajectory.steps[11])


def test_validation_scores_the_averaged_weights():
    from fastai.callback.core import Callback

    learn = _learner()
    validated = []

    class ValidationWeights(Callback):
        order = 70

        def before_validate(self):
            validated.append(self.learn.model.weight.detach().clone())

    average = weight_average_callback(0.5)
    learn.fit(1, cbs=[average, ValidationWeights()])
    assert torch.equal(validated[0], learn.model.weight)  # what was validated is what the fit leaves


def test_the_window_sets_the_decay_and_must_be_positive():
    assert ema_decay(2.0, 50) == pytest.approx(0.99)
    assert ema_decay(0.1, 5) == 0.0  # a window under one step keeps only the latest weights
    with pytest.raises(ValueError, match="positive"):
        ema_decay(0, 10)
    with pytest.raises(ValueError, match="average_epochs"):
        TrainConfig(average_epochs=-1)
