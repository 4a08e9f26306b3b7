from urllib.error import URLError

import pytest
import torch
from torchvision.models import WeightsEnum

from course_utils.weights import (
    MODELS as WEIGHTS_TABLE,
    WeightsError,
    fingerprint,
    imagenet_model,
    load_model,
    standin_model,
)

MODELS = ["resnet18", "mobilenet_v3_small"]


@pytest.mark.parametrize("name", MODELS)
def test_standin_weights_are_seeded_and_give_non_degenerate_logits(name):
    a, b = standin_model(name), standin_model(name)
    assert fingerprint(a) == fingerprint(b)
    assert not a.training
    x = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = a(x)
    assert logits.shape == (4, 1000)
    assert logits.std() > 0.1, "a stand-in whose logits are all near zero teaches nothing"
    assert len(set(logits.argmax(dim=1).tolist())) > 1, "different inputs should get different classes"


def test_falls_back_to_standin_when_the_download_fails(monkeypatch, capsys):
    def no_network(self, *args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(WeightsEnum, "get_state_dict", no_network)
    loaded = load_model("resnet18", "auto")
    assert loaded.is_standin
    assert "STAND-IN" in loaded.weights
    assert "unavailable" in capsys.readouterr().out


@pytest.mark.parametrize("name", MODELS)
def test_imagenet_model_is_torchvisions_call_with_the_weights_enum(monkeypatch, name):
    trained = standin_model(name, seed=5)
    asked = []

    def cached_file(self, *args, **kwargs):
        asked.append(self)
        return trained.state_dict()

    monkeypatch.setattr(WeightsEnum, "get_state_dict", cached_file)
    model = imagenet_model(name)
    assert asked == [WEIGHTS_TABLE[name][1]]
    assert not model.training and fingerprint(model) == fingerprint(trained)

    loaded = load_model(name, "auto")
    assert not loaded.is_standin
    assert loaded.weights == f"ImageNet weights {WEIGHTS_TABLE[name][1]}"
    assert fingerprint(loaded.model) == fingerprint(trained)


def test_environment_variable_chooses_standin(monkeypatch):
    monkeypatch.setenv("COURSE_WEIGHTS", "standin")
    loaded = load_model("mobilenet_v3_small")
    assert loaded.is_standin and not loaded.model.training


def test_loads_a_state_dict_file(tmp_path):
    source = standin_model("mobilenet_v3_small", seed=3)
    path = tmp_path / "mine.pth"
    torch.save(source.state_dict(), path)
    loaded = load_model("mobilenet_v3_small", str(path))
    assert not loaded.is_standin
    assert "mine.pth" in loaded.weights
    assert fingerprint(loaded.model) == fingerprint(source)


def test_a_corrupt_pth_gets_a_clear_error(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(WeightsError, match="broken.pth.*corrupt"):
        load_model("resnet18", str(path))


def test_a_missing_or_mismatched_pth_gets_a_clear_error(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_model("resnet18", str(tmp_path / "missing.pth"))
    path = tmp_path / "mobilenet.pth"
    torch.save(standin_model("mobilenet_v3_small").state_dict(), path)
    with pytest.raises(WeightsError, match="does not fit resnet18"):
        load_model("resnet18", str(path))


def test_unknown_model_name():
    with pytest.raises(ValueError, match="resnet18"):
        load_model("vgg16", "standin")
