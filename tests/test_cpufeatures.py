import pytest

from course_utils import cpufeatures
from course_utils.cpufeatures import (
    FEATURES,
    CpuFeatures,
    cpu_features,
    int8_outlook,
    parse_linux_flags,
    parse_macos_sysctl,
)

SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 avx512f avx512bw avx512_vnni avx_vnni " \
                  "amx_tile amx_int8\n\nprocessor\t: 1\nflags\t\t: fpu avx2\n"
GRAVITON = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes asimddp sve i8mm\n"
HASWELL = "processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma\n"


def features_from(text: str, tmp_path) -> CpuFeatures:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)
    return cpu_features(cpuinfo)


def test_x86_flags_from_cpuinfo(tmp_path):
    found = features_from(SAPPHIRE_RAPIDS, tmp_path)
    assert found.source.endswith("cpuinfo") and found.known
    assert found.has("AMX-INT8") and found.has("AVX512-VNNI") and found.has("AVX-VNNI")
    assert not found.has("AVX-VNNI-INT8") and not found.has("ARM dot-product")
    assert int8_outlook(found)[0] == "AMX-INT8"


def test_arm_features_line(tmp_path):
    found = features_from(GRAVITON, tmp_path)
    assert found.has("ARM dot-product") and found.has("ARM i8mm") and not found.has("AVX2")
    kind, meaning = int8_outlook(found)
    assert kind == "ARM i8mm" and "signed" in meaning


def test_avx2_without_vnni_advises_reduce_range(tmp_path):
    kind, meaning = int8_outlook(features_from(HASWELL, tmp_path))
    assert kind == "AVX2" and "reduce_range=True" in meaning


def test_vnni_without_amx(tmp_path):
    found = features_from("flags: avx2 avx512bw avx512_vnni\n", tmp_path)
    assert int8_outlook(found)[0] == "AVX512-VNNI"
    assert int8_outlook(features_from("flags: avx2\n", tmp_path))[0] == "AVX2"
    assert int8_outlook(features_from("flags: sse2\n", tmp_path))[0] == "none"


def test_unknown_platform_says_unknown(monkeypatch, tmp_path):
    monkeypatch.setattr(cpufeatures.sys, "platform", "win32")
    found = cpu_features()
    assert not found.known and all(value is None for value in found.present.values())
    assert set(found.table()["this CPU"]) == {"unknown"}
    assert int8_outlook(found)[0] == "unknown"
    assert not found.has("AVX2")


def test_macos_sysctl_answers():
    answers = {"hw.optional.arm.FEAT_DotProd": "1", "hw.optional.arm.FEAT_I8MM": "0",
               "machdep.cpu.leaf7_features": ""}
    present = parse_macos_sysctl(answers)
    assert present["ARM dot-product"] is True and present["ARM i8mm"] is False
    assert present["AVX2"] is False and present["AMX-INT8"] is None  # no sysctl key for AMX
    intel = parse_macos_sysctl({"machdep.cpu.leaf7_features": "SMEP AVX2 BMI2 AVX512BW AVX512VNNI"})
    assert intel["AVX2"] and intel["AVX512-VNNI"] and not intel["ARM dot-product"]


def test_macos_apple_silicon_has_no_x86_features(monkeypatch):
    monkeypatch.setattr(cpufeatures.sys, "platform", "darwin")
    monkeypatch.setattr(cpufeatures.platform, "machine", lambda: "arm64")
    monkeypatch.setattr(cpufeatures, "_sysctl", lambda keys: {"hw.optional.arm.FEAT_DotProd": "1"})
    found = cpu_features()
    assert found.source == "sysctl" and found.has("ARM dot-product")
    assert found.present["AMX-INT8"] is False and found.present["AVX2"] is False


def test_table_and_unknown_feature_names(tmp_path):
    found = features_from(SAPPHIRE_RAPIDS, tmp_path)
    table = found.table()
    assert list(table.index) == list(FEATURES) and table.loc["AMX-INT8", "this CPU"] == "yes"
    with pytest.raises(ValueError, match="Unknown feature 'VNNI'"):
        found.has("VNNI")
    assert parse_linux_flags({"avx2"})["AVX2"] is True


def test_this_machine_does_not_fail():
    found = cpu_features()
    assert set(found.present) == set(FEATURES)
    assert isinstance(int8_outlook(found)[1], str)
