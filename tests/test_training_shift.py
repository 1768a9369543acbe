"""The shift proxy's images (training.shift): made deterministically from real shoes photos, each
shift changes the picture the way it says, and a background is only replaced where it is plain."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from training.shift import SHIFTS, foreground_mask, shift_image


@pytest.fixture(scope="module")
def shoe_bytes(shoes_root) -> bytes:
    """A real product shot on a plain white background (a Converse, test split)."""
    return (shoes_root / "test" / "converse" / "12.jpg").read_bytes()


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype="float32")


@pytest.mark.parametrize("shift", sorted(SHIFTS))
def test_a_shift_is_the_same_picture_every_time_and_another_with_another_seed(shoe_bytes, shift):
    first, again = shift_image(shoe_bytes, shift), shift_image(shoe_bytes, shift)
    assert np.array_equal(_pixels(first.image), _pixels(again.image))
    original = _pixels(Image.open(io.BytesIO(shoe_bytes)))
    assert first.image.size == (original.shape[1], original.shape[0])
    assert np.abs(_pixels(first.image) - original).mean() > 2  # the picture really changed
    other_seed = shift_image(shoe_bytes, shift, seed=1)
    assert not np.array_equal(_pixels(other_seed.image), _pixels(first.image))


def test_a_new_background_replaces_the_studio_white_and_keeps_the_shoe(shoe_bytes):
    original = Image.open(io.BytesIO(shoe_bytes)).convert("RGB")
    mask = foreground_mask(original)
    assert mask is not None and 0.1 < mask.mean() < 0.9
    placed = shift_image(shoe_bytes, "background")
    assert placed.changed
    before, after = _pixels(original), _pixels(placed.image)
    shoe, backdrop = mask > 0.99, mask < 0.01
    assert np.abs(after - before)[shoe].mean() < 2  # the shoe's own pixels stay
    assert np.abs(after - before)[backdrop].mean() > 40  # the white studio background is gone
    assert after[backdrop].std() > 10  # replaced by a photo, not a flat colour


def test_a_photo_without_a_plain_background_keeps_its_own(tmp_path):
    import skimage.data

    buffer = io.BytesIO()
    Image.fromarray(skimage.data.coffee()).save(buffer, format="JPEG", quality=95)
    kept = shift_image(buffer.getvalue(), "background")
    assert not kept.changed
    assert np.abs(_pixels(kept.image) - _pixels(Image.open(io.BytesIO(buffer.getvalue())))).max() == 0


def test_an_unknown_shift_is_refused(shoe_bytes):
    with pytest.raises(ValueError, match="shift must be one of"):
        shift_image(shoe_bytes, "fog")


def test_the_degrade_augmentation_blurs_or_recompresses_training_images_only(shoe_bytes):
    import random

    from fastai.vision.core import PILImage

    from training.degrade import PhotoDegrade

    image = PILImage.create(shoe_bytes)
    always = PhotoDegrade(p=1.0)
    random.seed(0)
    changed = [always(image, split_idx=0) for _ in range(6)]
    assert all(isinstance(c, PILImage) and c.size == image.size for c in changed)
    assert all(np.abs(_pixels(c) - _pixels(image)).mean() > 0.5 for c in changed)
    assert np.array_equal(_pixels(always(image, split_idx=1)), _pixels(image))  # validation: untouched
    assert np.array_equal(_pixels(PhotoDegrade(p=0.0)(image, split_idx=0)), _pixels(image))


def test_the_backdrop_augmentation_puts_a_studio_shot_on_a_made_backdrop_and_keeps_the_shoe(shoe_bytes, shoes_root):
    import random

    from fastai.vision.core import PILImage

    from training.backdrop import BackdropSwap

    image = PILImage.create(shoe_bytes)
    mask = foreground_mask(image) > 0.99
    swap = BackdropSwap(p=1.0)
    random.seed(0)
    placed, again = swap(image, split_idx=0), swap(image, split_idx=0)
    before, after = _pixels(image), _pixels(placed)
    assert isinstance(placed, PILImage) and placed.size == image.size
    assert np.abs(after - before)[~mask].mean() > 20  # the studio white is gone
    assert np.abs(after - before)[mask].mean() < 2  # the shoe is the shoe
    assert not np.array_equal(after, _pixels(again))  # another backdrop each time
    assert np.array_equal(_pixels(swap(image, split_idx=1)), before)  # validation: untouched
    street = PILImage.create(shoes_root / "train" / "adidas" / "75.jpg")  # on feet, in the street
    assert np.array_equal(_pixels(swap(street, split_idx=0)), _pixels(street))  # no plain background to replace
    from training.config import AugmentConfig, TrainConfig
    from training.data import item_transforms

    names = [type(t).__name__ for t in item_transforms(TrainConfig(augment=AugmentConfig(backdrop=0.4, degrade=0.3)))]
    assert names[:2] == ["BackdropSwap", "PhotoDegrade"]  # a new backdrop, then blur or JPEG, then the crop
    assert "BackdropSwap" not in [type(t).__name__ for t in item_transforms(TrainConfig())]
