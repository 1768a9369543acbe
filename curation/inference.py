"""Pooled backbone features, computed fast on a CPU.

Images go in as uint8 pixels (batch, H, W, 3), resized and cropped by timm's own evaluation
steps in PIL; the model normalises them inside its graph, so no per-image tensor conversion runs
in Python. The graph runs in OpenVINO's CPU runtime when the model converts: lite0 at 224 px on
one core, about 145-160 images/s against about 90 for the traced, frozen channels-last torch
graph it replaces (bench/RESULTS.md), the same vectors within 1e-5. Precision is held
at fp32 on every host: OpenVINO would pick bf16 on AMX hosts, faster but with vectors (and so
duplicate pairs) that depend on the host. A model that does not convert runs as a traced torch
graph, or eagerly in channels-last order when it does not trace either.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

BACKENDS = ("auto", "openvino", "torch")


@dataclass
class FeatureExtractor:
    """A function from uint8 pixels (batch, H, W, 3) to pooled features (batch, dim), float32."""

    run: Callable[[np.ndarray], np.ndarray]
    backend: str  # "openvino", "torch-traced" or "torch-eager": which runtime computes the vectors
    input_size: tuple[int, int]  # (H, W) the pixels must have

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        if pixels.dtype != np.uint8 or pixels.shape[1:] != (*self.input_size, 3):
            raise ValueError(f"expected uint8 pixels (batch, {self.input_size[0]}, {self.input_size[1]}, 3), "
                             f"got {pixels.dtype} {pixels.shape}")
        return np.asarray(self.run(np.ascontiguousarray(pixels)), dtype=np.float32)


def _pixels_module(model, mean: Sequence[float], std: Sequence[float]):
    """A module from uint8 (batch, H, W, 3) pixels to the pooled pre-logit features of a timm model."""
    import torch

    class FromPixels(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            # (x / 255 - mean) / std as one multiply-add
            std_ = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
            self.register_buffer("scale", 1.0 / (255.0 * std_))
            self.register_buffer("shift", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) / std_)

        def forward(self, pixels):
            x = pixels.permute(0, 3, 1, 2).float() * self.scale - self.shift  # channels-last strides
            return self.inner.forward_head(self.inner.forward_features(x), pre_logits=True)

    return FromPixels(copy.deepcopy(model)).eval()


def feature_extractor(model, *, mean: Sequence[float], std: Sequence[float],
                      input_size: tuple[int, int] = (224, 224), backend: str = "auto",
                      device: str = "cpu") -> FeatureExtractor:
    """Features of `model` (a timm model, left untouched) from pixels normalised by mean and std.

    backend "auto" tries OpenVINO, then torch; "torch" skips OpenVINO. Threads: torch's setting.
    device "cuda": the torch graph on the GPU (OpenVINO is for the CPU only).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    module = _pixels_module(model, mean, std)
    size = (int(input_size[0]), int(input_size[1]))
    if device != "cpu":
        run, kind = _torch_run(module, size, device)
        return FeatureExtractor(run, kind, size)
    if backend in ("auto", "openvino"):
        try:
            return FeatureExtractor(_openvino_run(module, size), "openvino", size)
        except Exception:  # an op OpenVINO lacks: torch computes the same vectors, slower
            if backend == "openvino":
                raise
    run, kind = _torch_run(module, size)
    return FeatureExtractor(run, kind, size)


def _example(size: tuple[int, int], device: str = "cpu"):
    import torch

    return torch.zeros(2, *size, 3, dtype=torch.uint8, device=device)


def _openvino_run(module, size: tuple[int, int]) -> Callable[[np.ndarray], np.ndarray]:
    import openvino as ov
    import torch

    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm's shape asserts warn when traced
        converted = ov.convert_model(module, example_input=_example(size))
    converted.reshape([-1, *size, 3])  # fixed spatial size: about 20 % faster than fully dynamic shapes
    compiled = ov.Core().compile_model(converted, "CPU", {
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
        "ENABLE_CPU_PINNING": False,  # no faster pinned (measured), and the cores stay shared with torch
    })
    request = compiled.create_infer_request()

    def run(pixels: np.ndarray) -> np.ndarray:
        # the request reuses its output buffer: copy before the next batch overwrites it
        return request.infer({0: pixels})[0].copy()

    return run


def _torch_run(module, size: tuple[int, int], device: str = "cpu") -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    import torch

    module = module.to(device=device, memory_format=torch.channels_last)
    traced: Any = module
    kind = "torch-eager"
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.freeze(torch.jit.trace(module, _example(size, device), check_trace=False))
            kind = "torch-traced"
    except Exception:  # an architecture that does not trace: eager channels-last still helps
        traced = module

    def run(pixels: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return traced(torch.from_numpy(pixels).to(device)).float().cpu().numpy()

    return run, kind


def pixel_transform(data_config: dict[str, Any]) -> Callable[[Any], np.ndarray]:
    """timm's evaluation preprocessing for `data_config` up to the tensor conversion (resize and
    crop in PIL): an RGB PIL image -> uint8 (H, W, 3) pixels for a FeatureExtractor."""
    from timm.data import create_transform

    steps = list(create_transform(**data_config).transforms)
    cut = next(i for i, step in enumerate(steps) if "ToTensor" in type(step).__name__)
    pil_steps = steps[:cut]

    def transform(image) -> np.ndarray:
        for step in pil_steps:
            image = step(image)
        return np.asarray(image, dtype=np.uint8)

    return transform


def extractor_for(loaded, backend: str = "auto", device: str = "cpu") -> tuple[Callable[[Any], np.ndarray], FeatureExtractor]:
    """The pixel transform and feature extractor of a curation.models.LoadedModel."""
    config = loaded.data_config
    size = tuple(config["input_size"][1:])
    return pixel_transform(config), feature_extractor(
        loaded.model, mean=config["mean"], std=config["std"], input_size=size, backend=backend, device=device)
