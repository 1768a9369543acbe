"""Fitting the schedule to a time budget on whatever CPU (or GPU) runs it.

The same recipe takes 37 s an epoch on one 2-core host and 80 s on another (AVX-512 against AVX2
only), so a fixed epoch count breaks any time promise. With a budget, training runs its frozen
epoch as usual, timing it, then measures what one step costs with the whole network trainable
against one with the body frozen (a few real batches, forward and backward, no optimiser step; the
weights and batch-norm statistics are put back), and so estimates an unfrozen epoch (plus a tenth for
the optimiser's step, which the probe leaves out: training.learner). Where the recipe's unfrozen
epochs do not all fit, the first ones are trained at a smaller size if the recipe names one
(TrainConfig.low_res_size, probed the same way; the last LAST_FULL_EPOCHS always at full size), so that
a slower host keeps its epochs and gives up resolution early, when the model is still coarse; only
where that is not enough are epochs cut. Never more than the recipe's epochs.
The decision and its figures go into model.json ("schedule").
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

EXPORT_RESERVE_S = 30.0  # export and the last epoch's checkpoint reload, kept out of the budget
# timed steps after one untimed warm-up step: six probes of 3 steps on lite2 at 260 px ranged 1.20x (frozen) and
# 1.17x (unfrozen) from fastest to slowest, of 8 steps 1.08x and 1.13x; the estimate of an epoch rests on both
PROBE_STEPS = 8
MIN_EPOCHS = 1
LAST_FULL_EPOCHS = 3  # the last epochs always at full size: the model ends at the size it is used at


@dataclass(frozen=True)
class Schedule:
    budget_s: float
    spent_s: float  # the frozen phase and the probes
    epoch_s: float  # estimated seconds of one unfrozen epoch
    max_epochs: int  # the recipe's
    epochs: int  # chosen
    reason: str
    low_res_epochs: int = 0  # of the chosen epochs, the first ones at low_res_size
    low_res_size: int = 0
    # estimated seconds of one unfrozen epoch at low_res_size (0: not probed, as where the recipe fits at full size)
    low_res_epoch_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # unrounded: the choice can be recomputed from what model.json says


def epochs_within(budget_s: float, spent_s: float, epoch_s: float, max_epochs: int,
                  reserve_s: float = EXPORT_RESERVE_S, *, low_res_epoch_s: float = 0.0,
                  low_res_size: int = 0) -> Schedule:
    """The most unfrozen epochs, within [MIN_EPOCHS, max_epochs], that fit in budget_s - spent_s - reserve_s,
    with as few of the first ones at low_res_size (an epoch there estimated at low_res_epoch_s; 0: no
    smaller size) as that takes, and the last LAST_FULL_EPOCHS at full size."""
    left = budget_s - spent_s - reserve_s
    faster = low_res_size if 0 < low_res_epoch_s < epoch_s else 0
    found = (max_epochs, 0) if epoch_s <= 0 else next(  # epoch_s 0: nothing could be timed
        ((n, k) for n in range(max_epochs, MIN_EPOCHS - 1, -1)
         if (k := _low_res_epochs_needed(left, n, epoch_s, low_res_epoch_s if faster else 0.0)) is not None), None)
    fits = found is not None
    epochs, low = found or (MIN_EPOCHS, 0)
    return Schedule(budget_s, spent_s, epoch_s, max_epochs, epochs,
                    _reason(epochs, low, faster, max_epochs, epoch_s, low_res_epoch_s, left, fits),
                    low, faster if low else 0, low_res_epoch_s if faster else 0.0)


def described(schedule: dict) -> str:
    """What the budget chose and why, as a sentence for the reports, from model.json's "schedule"."""
    return f"a time budget of {schedule['budget_s'] / 60:g} minutes: {schedule['reason']}."


def _low_res_epochs_needed(left: float, epochs: int, epoch_s: float, low_res_epoch_s: float) -> int | None:
    """How many of `epochs` must run at the smaller size to fit in `left` seconds (None: they cannot)."""
    over = epochs * epoch_s - left
    if over <= 0:
        return 0
    if low_res_epoch_s <= 0:
        return None
    needed = math.ceil(over / (epoch_s - low_res_epoch_s) - 1e-9)
    return needed if needed <= max(0, epochs - LAST_FULL_EPOCHS) else None


def _reason(epochs: int, low: int, size: int, max_epochs: int, epoch_s: float, low_s: float, left: float,
            fits: bool) -> str:
    first = f", the first {low} at {size} px" if low else ""
    pace = f"an epoch takes about {epoch_s:.0f} s here" + (f" and {low_s:.0f} s at {size} px" if size else "")
    if not fits:
        return f"1 epoch, over the budget: {pace} and only {max(left, 0):.0f} s were left"
    if epochs == max_epochs and not low:
        return f"the recipe's {max_epochs} epochs fit: {max_epochs} x {epoch_s:.0f} s within {left:.0f} s left"
    chosen = f"the recipe's {max_epochs} epochs" if epochs == max_epochs else f"{epochs} of the recipe's {max_epochs} epochs"
    return f"{chosen}{first}: {pace}, and {left:.0f} s of the budget were left"


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
