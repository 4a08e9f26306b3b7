"""Write a fake torchvision weights cache: trained-like weights that are not the stand-ins.

The portability matrix refreshes the stored outputs with these weights, then checks them with
the stand-ins, to prove that no compared output depends on the weights::

    python tests/fake_weights.py /tmp/fake-torch-home
    TORCH_HOME=/tmp/fake-torch-home COURSE_WEIGHTS=auto jupyter nbconvert --execute ...

torchvision checks a weight file's hash only when it downloads it; a file already in the cache
is loaded as it is, so ``load_model(name)`` in ``auto`` mode takes these. They differ from the
stand-ins in seed and in scale: logits spread four times wider, so predictions are confident
and top-1 margins large, as with trained weights.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from course_utils.weights import MODELS, standin_model

FAKE_SEED = 7
LOGIT_SCALE = 4.0


def fake_state_dict(name: str) -> dict[str, torch.Tensor]:
    """Return a seeded state dict for ``name`` that differs from the stand-in's."""
    model = standin_model(name, seed=FAKE_SEED)
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        head.weight.mul_(LOGIT_SCALE)
        head.bias.mul_(LOGIT_SCALE)
    return model.state_dict()


def build(torch_home: Path) -> list[Path]:
    """Write every course model's fake weights where torchvision looks under ``torch_home``."""
    folder = Path(torch_home) / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (_, weights) in MODELS.items():
        path = folder / Path(weights.url).name
        torch.save(fake_state_dict(name), path)
        written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} TORCH_HOME")
    for path in build(Path(sys.argv[1])):
        print(path)
