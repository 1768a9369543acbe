"""Keeping a pretrained backbone's stem and first stages fixed while the rest fine-tunes.

The early stages run at the highest resolution, and a trainable layer there makes the backward
pass go all the way down: fixing the stem and the first 3 of lite2's 7 stages cuts a CPU training
step at 260 px by about 35% (0.86 to 0.56 s at batch 8, 2 threads). Their weights are the generic
low-level filters that fine-tuning moves least. Batch-norm layers there are fixed as well (fastai's
freeze keeps them trainable), or the backward pass would still reach them.

Fixing a batch-norm layer's weights does not fix its statistics: in training mode it normalises
with the batch's own mean and variance and moves its running averages towards them. Until
2026-12-03 that happened here: the "fixed" stem of a lite2 run ended with running means up to 6.2
away from the pretrained ones, estimated from the last few dozen 8-image batches.
`keep_norm_statistics_callback` puts such layers in evaluation mode for every training epoch.
"""

from __future__ import annotations

from training.config import NORM_STATISTICS


def stage_groups(model) -> list[list[str]]:
    """Parameter names of a timm model grouped stem first, then stage by stage (timm's coarse
    group_matcher, which every timm architecture defines)."""
    from timm.models import group_parameters

    groups = group_parameters(model, model.group_matcher(coarse=True))
    return [groups[key] for key in sorted(groups)]


def freeze_early_stages(model, stages: int) -> list[str]:
    """Fix the stem and the first `stages` stages (requires_grad off); returns the names fixed.
    The last group (the head, when the body has one) is never fixed."""
    if stages <= 0:
        return []
    groups = stage_groups(model)
    if stages >= len(groups) - 1:
        raise ValueError(f"{type(model).__name__} has {len(groups) - 2} stages after its stem; "
                         f"cannot keep {stages} of them fixed")
    names = [name for group in groups[: stages + 1] for name in group]
    parameters = dict(model.named_parameters())
    for name in names:
        parameters[name].requires_grad_(False)
    return names


def norm_layers_to_keep(body, which: str) -> list:
    """The body's batch-norm layers whose running statistics training must not touch.

    "batch": none (every layer normalises with the batch and updates its averages, PyTorch's default);
    "fixed-stages": those whose weights are fixed (no trainable parameter): the fixed stages;
    "pretrained": every batch-norm layer of the pretrained body (its weights still train), which
    takes the batch-size noise out of normalisation altogether; the new head's layers always learn.
    Without batch statistics the network is less stable: lite2 at the default lr 3e-3 diverged this
    way (bench/RESULTS.md), so it wants a lower learning rate.
    """
    from torch.nn.modules.batchnorm import _BatchNorm

    if which not in NORM_STATISTICS:
        raise ValueError(f"norm statistics must be one of {NORM_STATISTICS}, not {which!r}")
    layers = [m for m in body.modules() if isinstance(m, _BatchNorm)]
    if which == "batch":
        return []
    if which == "fixed-stages":
        return [m for m in layers if not any(p.requires_grad for p in m.parameters())]
    return layers


def keep_norm_statistics_callback(which: str):
    """A fastai callback that, after fastai puts the model in training mode, puts the batch-norm layers
    chosen by `norm_layers_to_keep` back in evaluation mode (their pretrained statistics)."""
    from fastai.callback.core import Callback, TrainEvalCallback

    class KeepNormStatistics(Callback):
        run_after = TrainEvalCallback  # which calls model.train() in its before_train

        def before_train(self):
            for layer in norm_layers_to_keep(self.learn.model[0], which):
                layer.eval()

    return KeepNormStatistics()
