import pytest
import torch

from helpers.networks.models import build_model, count_macs_params


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
@pytest.mark.parametrize("channels, classes", [(1, 10), (3, 47), (3, 100)])
def test_output_shapes(name, channels, classes):
    model = build_model(name, classes, channels, width=0.25).eval()
    assert model(torch.zeros(2, channels, 32, 32)).shape == (2, classes)


def test_small_input_stems():
    r = build_model("resnet18", 10)
    assert r.conv1.kernel_size == (3, 3) and r.conv1.stride == (1, 1)
    assert isinstance(r.maxpool, torch.nn.Identity)
    m = build_model("mobilenet_v2", 10)
    assert m.features[0][0].stride == (1, 1)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_macs_fall_with_width(name):
    macs = [count_macs_params(build_model(name, 10, 3, w))[0] for w in (1.0, 0.5, 0.25)]
    assert macs[0] > 2.5 * macs[1] > 2.5 * 2.5 * macs[2] * 0.9
    # ResNet-18 at full width and 32x32 input is the well-known ~0.56 GMACs CIFAR network
    if name == "resnet18":
        assert 0.54e9 < macs[0] < 0.58e9


def test_params_match_torch_count():
    model = build_model("resnet18", 10, 3, 0.5)
    assert count_macs_params(model)[1] == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("kwargs, word", [({"name": "vgg"}, "vgg"), ({"in_channels": 2}, "in_channels"),
                                          ({"width": 0}, "width"), ({"num_classes": 1}, "num_classes")])
def test_bad_arguments(kwargs, word):
    args = {"name": "resnet18", "num_classes": 10, **kwargs}
    with pytest.raises(ValueError, match=word):
        build_model(**args)
