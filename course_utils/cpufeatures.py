"""Which instructions for 8-bit integer arithmetic this CPU has (taught in notebook 09).

An int8 model is only faster than float32 when the processor can multiply and add many 8-bit
numbers in one instruction. The features that decide it:

* x86: AVX2 (``vpmaddubsw``: pairs of u8 x s8 products summed into 16 bits, which can saturate),
  AVX-512 (twice as wide), VNNI (``vpdpbusd``: four u8 x s8 products added straight into 32 bits,
  as AVX512-VNNI or the 256-bit AVX-VNNI), AVX-VNNI-INT8 (the same for s8 x s8 and u8 x u8)
  and AMX-INT8 (whole 16 x 64 byte tiles per instruction);
* Arm: the dot-product extension (``sdot``/``udot``) and the 8-bit matrix multiply (i8mm).

The flags are read from ``/proc/cpuinfo`` on Linux and from ``sysctl`` on macOS. Elsewhere
every feature is reported as unknown (``None``) rather than guessed.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

# feature -> (what it does for int8, Linux cpuinfo flags (any), macOS sysctl keys (any))
FEATURES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "AVX2": ("256-bit integer SIMD; u8 x s8 pairs summed into 16 bits (can saturate)",
             ("avx2",), ("machdep.cpu.leaf7_features:AVX2",)),
    "AVX-512": ("512-bit SIMD with byte/word instructions (AVX512F + AVX512BW)",
                ("avx512bw",), ("machdep.cpu.leaf7_features:AVX512BW",)),
    "AVX512-VNNI": ("vpdpbusd on 512 bits: 4 u8 x s8 products added into 32 bits, no saturation",
                    ("avx512_vnni",), ("machdep.cpu.leaf7_features:AVX512VNNI",)),
    "AVX-VNNI": ("vpdpbusd on 256 bits (client CPUs without AVX-512)", ("avx_vnni",), ()),
    "AVX-VNNI-INT8": ("dot products of s8 x s8 and u8 x u8 as well", ("avx_vnni_int8",), ()),
    "AMX-INT8": ("tile matrix multiply of 8-bit integers", ("amx_int8",), ()),
    "ARM dot-product": ("sdot/udot: 4 8-bit products added into 32 bits", ("asimddp",),
                        ("hw.optional.arm.FEAT_DotProd",)),
    "ARM i8mm": ("smmla/ummla: 8-bit matrix multiply-accumulate", ("i8mm",),
                 ("hw.optional.arm.FEAT_I8MM",)),
}


@dataclass(frozen=True)
class CpuFeatures:
    """The int8 features of this CPU: True, False, or None where the OS could not be asked."""

    machine: str
    source: str
    present: dict[str, bool | None]

    def has(self, feature: str) -> bool:
        """True only when ``feature`` is known to be present."""
        if feature not in FEATURES:
            raise ValueError(f"Unknown feature {feature!r}; choose from {list(FEATURES)}.")
        return self.present.get(feature) is True

    @property
    def known(self) -> bool:
        """False when the flags could not be read on this operating system."""
        return any(value is not None for value in self.present.values())

    def table(self) -> pd.DataFrame:
        """One row per feature: present (yes/no/unknown) and what it does for int8."""
        shown = {True: "yes", False: "no", None: "unknown"}
        return pd.DataFrame(
            [(name, shown[self.present[name]], FEATURES[name][0]) for name in FEATURES],
            columns=["feature", "this CPU", "what it does for int8"],
        ).set_index("feature")


def _linux_flags(cpuinfo: Path) -> set[str]:
    flags: set[str] = set()
    for line in cpuinfo.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):  # x86 says flags, Arm says Features
            flags.update(value.split())
    return flags


def _sysctl(keys: list[str]) -> dict[str, str]:
    """Return ``sysctl -n`` answers for the keys it knows (missing keys are left out)."""
    values = {}
    for key in keys:
        done = subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, check=False)
        if done.returncode == 0:
            values[key] = done.stdout.strip()
    return values


def parse_linux_flags(flags: set[str]) -> dict[str, bool]:
    """Map the flags of ``/proc/cpuinfo`` to the features of :data:`FEATURES`."""
    return {name: any(flag in flags for flag in linux) for name, (_, linux, _) in FEATURES.items()}


def parse_macos_sysctl(answers: dict[str, str]) -> dict[str, bool | None]:
    """Map ``sysctl`` answers to features; a feature with no sysctl key on this CPU is unknown."""
    present: dict[str, bool | None] = {}
    for name, (_, _, keys) in FEATURES.items():
        if not keys:
            present[name] = None
            continue
        found = False
        for key in keys:
            sysctl_key, _, word = key.partition(":")
            value = answers.get(sysctl_key, "")
            found |= (word.upper() in value.upper().split()) if word else value == "1"
        present[name] = found
    return present


def cpu_features(cpuinfo: Path | None = None) -> CpuFeatures:
    """Read this CPU's int8 features (Linux: ``/proc/cpuinfo``; macOS: ``sysctl``; else unknown).

    ``cpuinfo`` reads a file in the format of ``/proc/cpuinfo`` instead (on any system).
    """
    machine = platform.machine() or "unknown"
    if cpuinfo is None and sys.platform.startswith("linux"):
        cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo is not None and Path(cpuinfo).is_file():
        flags = parse_linux_flags(_linux_flags(Path(cpuinfo)))
        return CpuFeatures(machine, Path(cpuinfo).as_posix(), flags)
    if sys.platform == "darwin":
        keys = sorted({key.partition(":")[0] for _, _, keys in FEATURES.values() for key in keys})
        answers = _sysctl(keys)
        if answers:
            present = parse_macos_sysctl(answers)
            if machine == "arm64":  # no x86 instructions on Apple silicon
                present.update({name: False for name in FEATURES if not name.startswith("ARM")})
            return CpuFeatures(machine, "sysctl", present)
    return CpuFeatures(machine, "unknown (flags are read on Linux and macOS only)",
                       {name: None for name in FEATURES})


def int8_outlook(features: CpuFeatures) -> tuple[str, str]:
    """Return (the fastest u8 x s8 path ONNX Runtime's CPU kernels can use here, what it means).

    The kernel choice follows ONNX Runtime 1.32's MLAS library, which picks its quantized
    matrix-multiply kernels from the same CPU features at start-up.
    """
    has = features.has
    if not features.known:
        return "unknown", "The CPU's features could not be read: measure before you decide."
    if has("ARM dot-product") or has("ARM i8mm"):
        kind = "ARM i8mm" if has("ARM i8mm") else "ARM dot-product"
        return kind, ("8-bit dot products in hardware: int8 should pay off, and signed (int8) "
                      "activations are as fast as unsigned ones on Arm.")
    unsigned = (" On x86, ONNX Runtime fuses QDQ convolutions into integer kernels only for uint8 "
                "activations: give it uint8 activations and int8 weights.")
    if has("AMX-INT8"):
        return "AMX-INT8", ("tile instructions for u8 x s8 products (AVX512-VNNI for small "
                            "matrices): int8 should pay off where convolutions have many channels."
                            + unsigned)
    if has("AVX512-VNNI") or has("AVX-VNNI"):
        kind = "AVX512-VNNI" if has("AVX512-VNNI") else "AVX-VNNI"
        return kind, ("one instruction per four u8 x s8 products into 32 bits: int8 should pay "
                      "off where convolutions have many channels." + unsigned)
    if has("AVX2"):
        return "AVX2", ("no VNNI: u8 x s8 pairs are summed in 16 bits, which can saturate; expect "
                        "smaller gains and quantize weights with reduce_range=True." + unsigned)
    return "none", "no 8-bit dot-product instructions known here: int8 may well be slower."
