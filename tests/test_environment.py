from course_utils.environment import cpu_model, environment_report, has_cuda


def test_report_lists_versions_hardware_and_providers():
    report = environment_report()["value"]
    for item in ("torch", "onnxruntime", "onnxsim", "CPU", "PyTorch intra-op threads", "ONNX Runtime providers"):
        assert item in report.index
    assert "CPUExecutionProvider" in report["ONNX Runtime providers"]
    assert report["torch"] != "not installed"


def test_cpu_model_and_cuda_flag_do_not_fail():
    assert isinstance(cpu_model(), str) and cpu_model()
    assert has_cuda() in (True, False)
