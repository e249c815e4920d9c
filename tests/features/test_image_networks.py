"""The two offline image networks carry real ImageNet weights: they load strictly and recognise real photos.

Class indices are ImageNet-1k's: 698 palace, 663 monastery, 442 bell cote, 497 church, 985 daisy, 599 honeycomb.
sklearn's china.jpg is a Chinese temple; flower.jpg is a pompom dahlia (ImageNet has no dahlia class; daisy is
the nearest flower, and the dahlia's tight cells of petals read as honeycomb to MobileNetV2).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_sample_image

from vendome.features import efficientnet_lite0, mobilenet_v2
from vendome.features.image import efficientnet_lite0_encoder, mobilenet_v2_encoder

TEMPLE = {698, 663, 442, 497}  # palace, monastery, bell cote, church


@pytest.fixture(scope="module")
def photos():
    return [Image.fromarray(load_sample_image("china.jpg")), Image.fromarray(load_sample_image("flower.jpg"))]


def top5(encoder, photos):
    return np.argsort(-encoder.logits(photos), axis=1)[:, :5]


def test_shipped_weight_files_match_our_layouts_exactly():
    for module, net in ((mobilenet_v2, mobilenet_v2.MobileNetV2()),
                        (efficientnet_lite0, efficientnet_lite0.EfficientNetLite0())):
        state = torch.load(module.weights_path(), map_location="cpu", weights_only=True)
        if module is efficientnet_lite0:
            state = {efficientnet_lite0._rename(k): v for k, v in state.items()}
        result = net.load_state_dict(state, strict=True)  # raises on any missing, unexpected or mis-shaped key
        assert not result.missing_keys and not result.unexpected_keys


def test_mobilenet_v2_sees_a_palace_in_the_temple_photo(photos):
    temple, _ = top5(mobilenet_v2_encoder(), photos)
    assert temple[0] == 698
    assert len(TEMPLE & set(temple)) >= 2


def test_mobilenet_v2_reads_the_dahlia_as_honeycomb_or_daisy(photos):
    _, flower = top5(mobilenet_v2_encoder(), photos)
    assert flower[0] in {599, 985}
    assert not TEMPLE & set(flower)


def test_efficientnet_lite0_sees_a_palace_in_the_temple_photo(photos):
    temple, _ = top5(efficientnet_lite0_encoder(), photos)
    assert temple[0] == 698
    assert len(TEMPLE & set(temple)) >= 2


def test_efficientnet_lite0_calls_the_flower_a_daisy(photos):
    _, flower = top5(efficientnet_lite0_encoder(), photos)
    assert flower[0] == 985


def test_efficientnet_lite0_needs_its_tf_pixel_scaling(photos):
    """With torchvision's mean/std instead of (x - 127) / 128 the daisy is far less certain: the scaling matters."""
    tf_scaled = efficientnet_lite0_encoder()
    imagenet_scaled = efficientnet_lite0_encoder()
    imagenet_scaled.mean, imagenet_scaled.std = mobilenet_v2.MEAN, mobilenet_v2.STD
    p_tf = torch.softmax(torch.from_numpy(tf_scaled.logits(photos[1:])), -1)[0, 985]
    p_imagenet = torch.softmax(torch.from_numpy(imagenet_scaled.logits(photos[1:])), -1)[0, 985]
    assert p_tf > 2 * p_imagenet


@pytest.mark.parametrize("make", [mobilenet_v2_encoder, efficientnet_lite0_encoder])
def test_encoders_give_1280_d_pooled_features_in_batches(make, photos):
    encoder = make(batch_size=1)
    small = [photos[0].resize((120, 80)), photos[1].convert("RGBA")]  # small and transparent inputs are fine
    features = encoder.encode(small)
    assert features.shape == (2, 1280) and features.dtype == np.float32
    assert encoder.n_batches == 2
    assert (features >= 0).all() and features.std() > 0  # pooled ReLU6 activations


def test_large_jpegs_are_decoded_at_reduced_scale(tmp_path, photos):
    from vendome.features.image import decode_image

    path = tmp_path / "big.jpg"
    photos[0].resize((1920, 1280)).save(path, quality=90)
    image = decode_image(path)
    assert 320 <= min(image.size) < 1280  # JPEG draft mode: enough pixels for a 224 crop, far fewer to decode
    assert decode_image(b"not an image") is None
