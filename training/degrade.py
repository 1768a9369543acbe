"""A training augmentation for photos from elsewhere: blur and heavy JPEG, which the shift proxy
(training.shift) found to cost the default model most (blur: -19 points). Train split only."""

from __future__ import annotations

import io
import random

from fastai.vision.augment import RandTransform
from fastai.vision.core import PILImage
from PIL import ImageFilter


class PhotoDegrade(RandTransform):
    """With probability p, a Gaussian blur (0.5-2.5 px at 240 px) or a JPEG re-encoding (quality 15-60)."""

    split_idx, order = 0, 0  # train only; before the random resized crop, on the whole image

    def __init__(self, p: float = 0.3):
        super().__init__(p=p)

    def encodes(self, image: PILImage) -> PILImage:
        if random.random() < 0.5:
            radius = random.uniform(0.5, 2.5) * max(image.size) / 240
            return PILImage(image.filter(ImageFilter.GaussianBlur(radius)))
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=random.randint(15, 60))
        buffer.seek(0)
        return PILImage.create(buffer.getvalue())
