"""Load the course's torchvision models with ImageNet weights, or seeded stand-ins offline.

Notebook 02 teaches this module: :func:`imagenet_model` is the torchvision call to use in your
own code, and :func:`load_model` adds the choice of weights the course needs offline.

``COURSE_WEIGHTS`` chooses where the weights come from:

* ``auto`` (default): torchvision's cache, else a download, else stand-in weights;
* ``standin``: always the seeded stand-in (``make test`` sets this, so results do not
  depend on the network);
* a path to a ``.pth`` state dict, loaded with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torchvision import models

from course_utils.paths import display_path

# Model name -> (constructor, torchvision weights enum used for real ImageNet weights).
MODELS: dict[str, tuple[Callable[..., nn.Module], models.WeightsEnum]] = {
    "resnet18": (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1),
    "mobilenet_v3_small": (models.mobilenet_v3_small, models.MobileNet_V3_Small_Weights.IMAGENET1K_V1),
}
STANDIN_SEED = 20240125
STANDIN_LOGIT_STD = 1.0


class WeightsError(RuntimeError):
    """Weights could not be loaded; the message says which file and what to do."""


@dataclass
class LoadedModel:
    """A model in eval mode and a one-line description of its weights."""

    name: str
    model: nn.Module
    weights: str
    is_standin: bool

    def __repr__(self) -> str:
        return f"LoadedModel({self.name!r}, weights={self.weights!r})"


def _constructor(name: str) -> Callable[..., nn.Module]:
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; the course uses {sorted(MODELS)}.")
    return MODELS[name][0]


def torchvision_weights(name: str) -> models.WeightsEnum:
    """Return the torchvision weights enum (with its ``transforms()``) for ``name``."""
    _constructor(name)
    return MODELS[name][1]


def cached_weights_file(name: str) -> Path:
    """Return where torchvision caches the ImageNet weights of ``name``."""
    url = torchvision_weights(name).url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def imagenet_model(name: str) -> nn.Module:
    """Return ``name`` with torchvision's ImageNet weights, in eval mode (taught in notebook 02).

    For ResNet-18 this is ``models.resnet18(weights=models.ResNet18_Weights.IMAGENET1K_V1)``:
    torchvision downloads the file once into its cache (``TORCH_HOME``), checks its hash, and
    loads it; without network and cache it raises (``URLError``, ``OSError``, ...).
    """
    constructor, weights = _constructor(name), torchvision_weights(name)
    return constructor(weights=weights, progress=False).eval()


def standin_model(name: str, seed: int = STANDIN_SEED) -> nn.Module:
    """Build ``name`` with seeded stand-in weights that give non-degenerate logits.

    A freshly initialised network has BatchNorm statistics (mean 0, variance 1)
    that do not match its activations; MobileNetV3-Small then outputs logits near
    1e-10. We re-estimate every BatchNorm layer's statistics on seeded random
    images, as a calibration pass would, so activations keep a sensible scale,
    then centre and scale the last linear layer so that logits differ between
    inputs by a few units, as a trained classifier's do.
    """
    model = _constructor(name)()
    generator = torch.Generator().manual_seed(seed)
    for param in model.parameters():
        if param.dim() > 1:
            nn.init.kaiming_normal_(param, generator=generator)
        else:
            nn.init.normal_(param, mean=0.0, std=0.1, generator=generator)
    batchnorms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in batchnorms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(8, 3, 224, 224, generator=generator))
    for bn in batchnorms:
        bn.momentum = 0.1
    model.eval()
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        logits = model(torch.randn(16, 3, 224, 224, generator=generator))
        centre = logits.mean(dim=0)
        scale = STANDIN_LOGIT_STD / (logits - centre).std().clamp_min(1e-12)
        head.weight.mul_(scale)
        head.bias.sub_(centre).mul_(scale)
    return model


def _load_state_dict_file(name: str, path: Path) -> nn.Module:
    if not path.is_file():
        raise WeightsError(
            f"COURSE_WEIGHTS points to {display_path(path)}, which does not exist. "
            "Give the path of a .pth state dict, or set COURSE_WEIGHTS=auto."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for unreadable files
        raise WeightsError(
            f"Could not read weights file {display_path(path)} ({type(exc).__name__}: {exc}). "
            "It may be corrupt or not a state dict: download it again or set COURSE_WEIGHTS=auto."
        ) from exc
    if isinstance(state, nn.Module) or not isinstance(state, dict):
        raise WeightsError(
            f"{display_path(path)} holds a {type(state).__name__}, not a state dict. "
            "Save weights with torch.save(model.state_dict(), path)."
        )
    model = _constructor(name)()
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise WeightsError(
            f"{display_path(path)} does not fit {name}: {str(exc).splitlines()[0]} "
            f"Use a state dict saved from torchvision's {name}."
        ) from exc
    return model.eval()


def load_model(name: str, weights: str | None = None) -> LoadedModel:
    """Return ``name`` in eval mode with the weights ``COURSE_WEIGHTS`` asks for (notebook 02).

    ``weights`` overrides the environment variable; see the module docstring. In ``auto`` mode
    the ImageNet weights come from :func:`imagenet_model`; when that fails the stand-in is used
    and a line says why.
    """
    choice = weights if weights is not None else os.environ.get("COURSE_WEIGHTS", "auto")
    if choice == "standin":
        return LoadedModel(name, standin_model(name), _standin_label("COURSE_WEIGHTS=standin"), True)
    if choice != "auto":
        path = Path(choice).expanduser()
        return LoadedModel(name, _load_state_dict_file(name, path), f"state dict {display_path(path)}", False)
    try:
        model = imagenet_model(name)
    except Exception as exc:  # URLError, hash mismatch, truncated cache file...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"ImageNet weights for {name} unavailable ({type(exc).__name__}: {reason}); using stand-in weights.")
        return LoadedModel(name, standin_model(name), _standin_label("no ImageNet weights"), True)
    return LoadedModel(name, model, f"ImageNet weights {torchvision_weights(name)}", False)


def _standin_label(reason: str) -> str:
    return f"STAND-IN weights (seeded, untrained; {reason}): predictions are not real classes"


def fingerprint(model: nn.Module) -> str:
    """Return a short hash of a model's state dict, to tell weights apart."""
    digest = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def download_all() -> list[Path]:
    """Download every weight file the course uses into torchvision's cache, verifying hashes."""
    files = []
    for name in MODELS:
        torchvision_weights(name).get_state_dict(progress=True, check_hash=True)
        files.append(cached_weights_file(name))
    return files
