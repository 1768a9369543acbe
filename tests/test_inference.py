"""Fast CPU features: every runtime gives the eager model's vectors from the same images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from timm.data import create_transform

from curation.image_io import load_rgb
from curation.inference import extractor_for, feature_extractor
from curation.models import load_model


@pytest.fixture(scope="module")
def lite0():
    return load_model("tf_efficientnet_lite0")


def _images(shoes_root, n=5):
    return [load_rgb(f) for f in sorted((shoes_root / "test" / "nike").iterdir())[:n]]


def _eager(model, batch):
    with torch.inference_mode():
        return model.forward_head(model.forward_features(batch), pre_logits=True).numpy()


@pytest.mark.parametrize("backend, expected_kind", [("openvino", "openvino"), ("torch", "torch-traced")])
def test_fast_features_equal_the_eager_models_on_real_images(lite0, shoes_root, backend, expected_kind):
    images = _images(shoes_root)
    transform = create_transform(**lite0.data_config)  # timm's own evaluation path, as a reference
    expected = _eager(lite0.model, torch.stack([transform(image) for image in images]))

    pixels_of, fast = extractor_for(lite0, backend=backend)
    assert fast.backend == expected_kind
    pixels = np.stack([pixels_of(image) for image in images])
    assert pixels.shape == (5, 224, 224, 3) and pixels.dtype == np.uint8
    for size in (len(images), 1, 3):  # built at one batch size, used at any
        got = fast(pixels[:size])
        assert got.shape == (size, 1280) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected[:size], atol=1e-4, rtol=1e-4)
    # consecutive batches keep their own vectors (no output buffer shared between calls)
    first, second = fast(pixels[:2]), fast(pixels[2:4])
    np.testing.assert_allclose(first, expected[:2], atol=1e-4, rtol=1e-4)
    assert not np.allclose(first, second)
    # the caller's model is left as it was (NCHW, untraced)
    assert lite0.model.conv_stem.weight.is_contiguous()


def test_pixels_of_the_wrong_shape_or_type_are_refused(lite0):
    _, fast = extractor_for(lite0, backend="torch")
    with pytest.raises(ValueError, match="uint8 pixels"):
        fast(np.zeros((1, 3, 224, 224), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8 pixels"):
        fast(np.zeros((1, 224, 224, 3), dtype=np.float32))


class _Untraceable(torch.nn.Module):
    """A backbone whose forward refuses to be traced, like a model with data-dependent code."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward_features(self, x):
        if torch.jit.is_tracing() or torch.compiler.is_compiling():
            raise RuntimeError("cannot trace this")
        return self.conv(x)

    def forward_head(self, x, pre_logits=False):
        return x.mean(dim=(2, 3))


def test_a_model_that_neither_converts_nor_traces_still_runs_eagerly():
    model = _Untraceable().eval()
    pixels = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    fast = feature_extractor(model, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), input_size=(16, 16))
    assert fast.backend == "torch-eager"
    normalised = (torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    np.testing.assert_allclose(fast(pixels), _eager(model, normalised), atol=1e-5)
