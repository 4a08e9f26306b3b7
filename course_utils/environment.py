"""A report of the software and hardware a notebook runs on."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd

PACKAGES = ("torch", "torchvision", "onnx", "onnxruntime", "onnxscript", "onnxsim", "numpy")


def cpu_model() -> str:
    """Return the CPU's model name, as the operating system reports it."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment_report() -> pd.DataFrame:
    """Return versions, CPU, threads, GPU and ONNX Runtime providers as a two-column table."""
    import onnxruntime as ort
    import torch

    rows = [("Python", sys.version.split()[0]), ("Platform", platform.platform(terse=True))]
    rows += [(package, _version(package)) for package in PACKAGES]
    rows += [
        ("CPU", cpu_model()),
        ("Logical cores", str(os.cpu_count())),
        ("Cores this process may use", str(len(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else "?"),
        ("PyTorch intra-op threads", str(torch.get_num_threads())),
        ("CUDA GPU (PyTorch)", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"),
        ("PyTorch built with CUDA", torch.version.cuda or "no"),
        ("ONNX Runtime device", ort.get_device()),
        ("ONNX Runtime providers", ", ".join(ort.get_available_providers())),
    ]
    return pd.DataFrame(rows, columns=["item", "value"]).set_index("item")


def has_cuda() -> bool:
    """True when both PyTorch and ONNX Runtime can run on an NVIDIA GPU here."""
    import onnxruntime as ort
    import torch

    return torch.cuda.is_available() and "CUDAExecutionProvider" in ort.get_available_providers()
