"""The trained model's forward pass on one photo, without fastai's per-call DataLoader.

`learn.predict` builds a DataLoader for every call (the number the latency benchmark compares
with). Here the photo goes through exactly what evaluation did, once: the shared decoder
(`curation.image_io`, EXIF rotation applied), the shrink to the training size and JPEG re-encode of
the resized-image cache (training.data), then the learner's own validation item and batch
transforms (Resize, ToTensor, IntToFloat, Normalize), then the model. The logits equal
`learn.get_preds` on the same file (tests/test_app.py checks it).
"""

from __future__ import annotations

import copy
import io
import threading

import numpy as np
from PIL import Image


def training_pixels(image: Image.Image, size: int) -> bytes:
    """The JPEG the resized-image cache would hold for this decoded image (training.data)."""
    scale = size / min(image.size)
    if scale < 1:
        target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(target, Image.Resampling.BICUBIC, reducing_gap=3.0)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


class ModelRunner:
    """Log-probabilities of the exported learner for decoded RGB images; one forward at a time."""

    def __init__(self, learn, image_size: int):
        import torch

        self.learn = learn
        self.image_size = image_size
        self.model = learn.model.eval()
        self.classes = [str(c) for c in learn.dls.vocab]
        self._lock = threading.Lock()  # torch's intra-op threads serve one request at a time best
        self._torch = torch
        # the validation pipelines, with split_idx 1 as a DataLoader sets it when it iterates: random
        # crops, flips and lighting (split_idx 0) are skipped, RandomResizedCrop takes its centre crop
        self.item_tfms = copy.deepcopy(learn.dls.valid.after_item)
        self.batch_tfms = copy.deepcopy(learn.dls.valid.after_batch)
        self.item_tfms.split_idx = self.batch_tfms.split_idx = 1

    def _batch(self, images: list[Image.Image]):
        from fastai.vision.core import PILImage

        items = [self.item_tfms((PILImage.create(training_pixels(image, self.image_size)),))[0] for image in images]
        return self.batch_tfms((self._torch.stack(items),))[0]

    def log_probs(self, images: list[Image.Image]) -> np.ndarray:
        torch = self._torch
        with self._lock, torch.inference_mode():
            logits = self.model(self._batch(images)).float()
            return torch.log_softmax(logits, dim=1).numpy()
