import pytest
import torch
from torch import nn

from engine.models import MODELS, create_model, model_names


@pytest.mark.parametrize("name", model_names())
@pytest.mark.parametrize(("channels", "size"), [(1, 8), (1, 28), (3, 32), (3, 64)])
def test_every_model_adapts_to_channels_resolution_and_classes(name: str, channels: int, size: int) -> None:
    model = create_model(name, channels=channels, num_classes=7, image_size=size, width=8 if name.startswith("convnet") else None)
    x = torch.randn(3, channels, size, size)
    assert model(x).shape == (3, 7)
    assert model.forward_features(x).shape == (3, model.embed_dim)


def test_convnet_follows_the_literature_layout() -> None:
    model = create_model("convnet", channels=3, num_classes=10, image_size=32)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in model.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert len(convs) == 3 and all(c.out_channels == 128 and c.kernel_size == (3, 3) for c in convs)
    # Instance norm = one group per channel.
    assert all(n.num_groups == n.num_channels == 128 for n in norms)
    assert model.embed_dim == 128 * 4 * 4
    assert len([m for m in create_model("convnet", channels=3, num_classes=10, image_size=64).modules() if isinstance(m, torch.nn.Conv2d)]) == 4
    bn = create_model("convnet_bn", channels=3, num_classes=10, image_size=32)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in bn.modules())


def test_unknown_model_names_the_choices() -> None:
    with pytest.raises(ValueError, match="convnet"):
        create_model("vgg99", channels=1, num_classes=2, image_size=8)


@pytest.mark.parametrize("name", model_names())
def test_the_registry_says_which_models_have_a_layer_stack(name: str) -> None:
    """FIEM's check in the API reads ``ModelSpec.layer_stack`` instead of building a model; it must match the model."""
    model = create_model(name, channels=1, num_classes=2, image_size=8, width=2)
    assert MODELS.get(name).layer_stack == isinstance(getattr(model, "features", None), nn.Sequential)
