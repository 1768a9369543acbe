"""Fitting the schedule to a time budget on whatever CPU (or GPU) runs it.

The same recipe takes 37 s an epoch on one 2-core host and 80 s on another (AVX-512 against AVX2
only), so a fixed epoch count breaks any time promise. With a budget, training runs its frozen
epoch as usual, timing it, then measures what one step costs with the whole network trainable
against one with the body frozen (a few real batches, forward and backward, no optimiser step; the
weights and batch-norm statistics are put back), and so estimates an unfrozen epoch (plus a tenth for
the optimiser's step, which the probe leaves out: training.learner). The unfrozen
one-cycle schedule then gets as many epochs as fit in what is left, never more than the recipe's.
The decision and its figures go into model.json ("schedule").
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

EXPORT_RESERVE_S = 30.0  # export and the last epoch's checkpoint reload, kept out of the budget
PROBE_STEPS = 3  # timed steps after one untimed warm-up step
MIN_EPOCHS = 1


@dataclass(frozen=True)
class Schedule:
    budget_s: float
    spent_s: float  # the frozen phase and the probes
    epoch_s: float  # estimated seconds of one unfrozen epoch
    max_epochs: int  # the recipe's
    epochs: int  # chosen
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # unrounded: the choice can be recomputed from what model.json says


def epochs_within(budget_s: float, spent_s: float, epoch_s: float, max_epochs: int,
                  reserve_s: float = EXPORT_RESERVE_S) -> Schedule:
    """As many unfrozen epochs as fit in budget_s - spent_s - reserve_s, within [MIN_EPOCHS, max_epochs]."""
    left = budget_s - spent_s - reserve_s
    fit = math.floor(left / epoch_s) if epoch_s > 0 else max_epochs  # 0: nothing could be timed
    epochs = max(MIN_EPOCHS, min(max_epochs, fit))
    if fit >= max_epochs:
        reason = f"the recipe's {max_epochs} epochs fit: {max_epochs} x {epoch_s:.0f} s within {left:.0f} s left"
    elif fit >= MIN_EPOCHS:
        reason = (f"{epochs} of the recipe's {max_epochs} epochs: an epoch takes about {epoch_s:.0f} s here "
                  f"and {left:.0f} s of the budget were left")
    else:
        reason = (f"1 epoch, over the budget: an epoch takes about {epoch_s:.0f} s and only {max(left, 0):.0f} s "
                  f"were left")
    return Schedule(budget_s, spent_s, epoch_s, max_epochs, epochs, reason)


def step_seconds(learn, steps: int = PROBE_STEPS) -> float:
    """Median seconds of one training step (forward and backward) of `learn` as it is now trainable.
    Weights, batch-norm statistics and gradients are left as they were."""
    import torch

    model = learn.model
    saved = {name: value.detach().clone() for name, value in model.state_dict().items()}
    was_training = model.training
    model.train()
    seconds = []
    try:
        for step, (inputs, targets) in enumerate(_batches(learn.dls.train, steps + 1)):
            if inputs.dim() == 4:  # as training runs it (training.learner's channels-last callback)
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            started = time.perf_counter()
            learn.loss_func(model(inputs), targets).backward()
            if step:  # the first step warms caches and allocators up
                seconds.append(time.perf_counter() - started)
    finally:
        model.zero_grad(set_to_none=True)
        model.load_state_dict(saved)
        model.train(was_training)
    seconds.sort()
    return seconds[len(seconds) // 2] if seconds else 0.0


def _batches(loader, count: int):
    """`count` batches, starting the loader again when an epoch has fewer."""
    given = 0
    while given < count:
        empty = True
        for batch in loader:
            empty = False
            yield batch
            given += 1
            if given == count:
                return
        if empty:
            return
