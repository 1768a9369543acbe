"""Fast CPU features: the traced channels-last path gives the eager model's vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from timm.data import create_transform

from curation.image_io import load_rgb
from curation.inference import feature_extractor
from curation.models import load_model


@pytest.fixture(scope="module")
def lite0():
    return load_model("tf_efficientnet_lite0")


def _batch(loaded, shoes_root, n=5):
    transform = create_transform(**loaded.data_config)
    files = sorted((shoes_root / "test" / "nike").iterdir())[:n]
    return torch.stack([transform(load_rgb(f)) for f in files])


def _eager(model, batch):
    with torch.inference_mode():
        return model.forward_head(model.forward_features(batch), pre_logits=True)


@pytest.mark.parametrize("trace", [True, False])
def test_fast_features_equal_the_eager_models_on_real_images(lite0, shoes_root, trace):
    batch = _batch(lite0, shoes_root)
    expected = _eager(lite0.model, batch)
    fast = feature_extractor(lite0.model, trace=trace)
    for size in (len(batch), 1):  # traced at one batch size, used at any
        got = fast(batch[:size])
        assert got.shape == (size, 1280)
        assert torch.allclose(got, expected[:size], atol=1e-4, rtol=1e-4)
    # the caller's model is left as it was (NCHW, untraced)
    assert lite0.model.conv_stem.weight.is_contiguous()


class _Untraceable(torch.nn.Module):
    """A backbone whose forward refuses to be traced, like a model with data-dependent code."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward_features(self, x):
        if torch.jit.is_tracing():
            raise RuntimeError("cannot trace this")
        return self.conv(x)

    def forward_head(self, x, pre_logits=False):
        return x.mean(dim=(2, 3))


def test_a_model_that_cannot_be_traced_still_runs_eagerly():
    model = _Untraceable().eval()
    batch = torch.randn(3, 3, 16, 16)
    got = feature_extractor(model, example_size=(16, 16))(batch)
    assert np.allclose(got.numpy(), _eager(model, batch).numpy(), atol=1e-6)
