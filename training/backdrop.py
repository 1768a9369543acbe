"""A training augmentation for photos from elsewhere: the shoe cut out of its plain studio background
(training.shift's cut-out) and put on a made backdrop. The shift proxy found the default model loses
7 points when the same shoes stand on brick or gravel. Train split only.

The backdrops are made here, never the proxy's photos (training.shift.BACKDROPS), so that the proxy
still measures photos the model never saw: value noise over several scales (ground, fabric, foliage
seen out of focus), tinted between two random colours, with a light gradient as a room gives.
"""

from __future__ import annotations

import random

import numpy as np
from fastai.vision.augment import RandTransform
from fastai.vision.core import PILImage
from PIL import Image

OCTAVES = (4, 8, 16, 32)  # noise cells across the image, coarse to fine


def made_backdrop(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """An RGB float32 backdrop of `size` (width, height): tinted multi-scale noise and a gradient."""
    width, height = size
    texture = np.zeros((height, width), dtype="float32")
    weights = rng.dirichlet(np.ones(len(OCTAVES)))
    for cells, weight in zip(OCTAVES, weights):
        noise = Image.fromarray((rng.random((cells, cells)) * 255).astype("uint8"))
        texture += weight * np.asarray(noise.resize((width, height), Image.BICUBIC), dtype="float32") / 255.0
    ramp = np.linspace(-1, 1, height if rng.random() < 0.5 else width, dtype="float32")
    gradient = ramp[:, None] if len(ramp) == height else ramp[None, :]
    texture = np.clip(texture + rng.uniform(-0.25, 0.25) * gradient, 0, 1)
    dark, light = rng.uniform(0, 160, 3), rng.uniform(90, 255, 3)
    return (dark + texture[..., None] * (light - dark)).astype("float32")


class BackdropSwap(RandTransform):
    """With probability p, a photo on a plain background is put on a made backdrop; others pass."""

    split_idx, order = 0, 0  # train only; on the whole image, before any degradation and the crop

    def __init__(self, p: float = 0.3):
        super().__init__(p=p)

    def encodes(self, image: PILImage) -> PILImage:
        from training.shift import foreground_mask, put_on

        mask = foreground_mask(image)
        if mask is None:
            return image
        rng = np.random.default_rng(random.getrandbits(32))  # fastai seeds `random`: runs repeat
        return PILImage(put_on(image, mask, made_backdrop(image.size, rng)))
