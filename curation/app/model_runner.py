"""The trained model's forward pass on one photo, without fastai's per-call DataLoader (and its
companion model's, when one was trained: CompanionRunner below).

`learn.predict` builds a DataLoader for every call (the number the latency benchmark compares
with). Here the photo goes through exactly what evaluation did, once: the shared decoder
(`curation.image_io`, EXIF rotation applied), the shrink to the training size and JPEG re-encode of
the resized-image cache (training.data), then the learner's own validation item and batch
transforms (Resize, ToTensor, IntToFloat, Normalize), then the model. The model runs in
OpenVINO's CPU runtime when it converts (lite2 at 260 px on 2 cores: 14 ms against torch's 38 ms,
logits within 1e-4), else in torch; no torch kernels between the embedding backbones' OpenVINO
calls keeps the two runtimes' thread pools from slowing each other (bench/RESULTS.md). The logits
equal `learn.get_preds` on the same file within that (tests/test_app.py checks it).
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


def _openvino_forward(model, example, threads: int):
    import warnings

    import openvino as ov
    import torch

    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm's shape asserts warn when traced
        converted = ov.convert_model(model, example_input=torch.as_tensor(example))
    converted.reshape(list(example.shape))
    compiled = ov.Core().compile_model(converted, "CPU", {
        "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
        "ENABLE_CPU_PINNING": False})
    request = compiled.create_infer_request()
    return lambda batch: request.infer({0: np.asarray(torch.as_tensor(batch))})[0].copy()


class ModelRunner:
    """Log-probabilities of the exported learner for decoded RGB images; one forward at a time."""

    def __init__(self, learn, image_size: int, backend: str = "auto"):
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
        self.backend, self._forward = "torch", None
        if backend in ("auto", "openvino"):
            try:
                example = self._batch([Image.new("RGB", (image_size, image_size), (128, 128, 128))])
                self._forward, self.backend = _openvino_forward(self.model, example, torch.get_num_threads()), "openvino"
            except Exception:  # a model OpenVINO cannot convert runs in torch, as trained
                if backend == "openvino":
                    raise

    def _batch(self, images: list[Image.Image]):
        from fastai.vision.core import PILImage

        items = [self.item_tfms((PILImage.create(training_pixels(image, self.image_size)),))[0] for image in images]
        return self.batch_tfms((self._torch.stack(items),))[0]

    def logits(self, images: list[Image.Image]) -> np.ndarray:
        torch = self._torch
        with self._lock, torch.inference_mode():
            if self._forward is not None:
                return np.concatenate([self._forward(self._batch([image])) for image in images])
            return self.model(self._batch(images)).float().numpy()

    def log_probs(self, images: list[Image.Image]) -> np.ndarray:
        logits = self.logits(images).astype("float64")
        logits -= logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


class CompanionRunner:
    """The companion model's probabilities (training.companion) for decoded photos, as evaluation
    scores it: the frozen stages and the trained tail as one network on the photo and its mirror,
    averaged; in OpenVINO when it converts, else in torch. In torch, between the other OpenVINO calls, it
    made the whole answer 167 ms on 2 cores; in OpenVINO 113 ms, against 53 ms for the model alone."""

    def __init__(self, companion, backend: str = "auto"):
        import torch

        from curation.label_issues.finetune import frozen_stages

        self.summary = companion.summary
        self._state = frozen_stages(companion.params)
        self.model = torch.nn.Sequential(self._state[1], companion.net).eval()
        self._lock = threading.Lock()
        self._torch = torch
        self.backend, self._forward = "torch", None
        if backend in ("auto", "openvino"):
            try:
                example = self._views(Image.new("RGB", (64, 64), (128, 128, 128)))
                self._forward, self.backend = _openvino_forward(self.model, example, torch.get_num_threads()), "openvino"
            except Exception:  # as in ModelRunner: what does not convert runs in torch
                if backend == "openvino":
                    raise

    def _views(self, image: Image.Image):
        from curation.label_issues.finetune import normalized_pixels

        x = normalized_pixels(self._state, [self._state[0](image)])
        return self._torch.cat([x, x.flip(3)])

    def probabilities(self, images: list[Image.Image]) -> np.ndarray:
        torch = self._torch
        rows = []
        with self._lock, torch.inference_mode():
            for image in images:
                views = self._views(image)
                logits = self._forward(views) if self._forward is not None else self.model(views).float().numpy()
                rows.append(torch.softmax(torch.as_tensor(logits, dtype=torch.float64), 1).mean(0).numpy())
        return np.stack(rows)
