"""The classification service: settings, start-up, good and bad requests over HTTP, overload, SIGTERM."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from course_utils.export import export_onnx
from course_utils.loadtest import bad_calls
from course_utils.metadata import read_deployment_info
from course_utils.paths import data_dir
from course_utils.serve.app import Engine, ServeSettings, create_app
from course_utils.serve.footprint import closure_size_mb, installed_sizes, requirement_closure
from course_utils.serve.launch import free_port, start_service, uvicorn_command
from course_utils.weights import LoadedModel

with warnings.catch_warnings():  # Starlette's notice that its TestClient will move to httpx2
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

CAT = data_dir() / "images" / "tabby_cat.jpg"


class TinyClassifier(nn.Module):
    """1000 classes, like the course's models, but exported in a few seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4), nn.ReLU())
        self.head = nn.Linear(8, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    loaded = LoadedModel("tiny", TinyClassifier().eval(), "STAND-IN weights (test)", True)
    return export_onnx(loaded, tmp_path_factory.mktemp("serve") / "tiny.onnx", dynamic=["batch"])


@pytest.fixture(scope="module")
def large_jpeg() -> bytes:
    """A 6000x4000 JPEG of a smooth gradient: small to send, slow enough to decode to keep a worker busy."""
    ramp = np.linspace(0, 255, 6000, dtype=np.float32)
    pixels = np.stack([np.tile(ramp, (4000, 1)), np.tile(ramp[::-1], (4000, 1)),
                       np.full((4000, 6000), 128, np.float32)], axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def test_settings_travel_through_the_environment(model_file):
    settings = ServeSettings(model=str(model_file), threads=2, concurrency=3, queue=4, timeout_s=2.5)
    assert ServeSettings.from_env(settings.to_env()) == settings
    with pytest.raises(ValueError, match="COURSE_SERVE_MODEL"):
        ServeSettings.from_env({})
    with pytest.raises(ValueError, match="COURSE_SERVE_THREADS='two' is not a valid int"):
        ServeSettings.from_env({**settings.to_env(), "COURSE_SERVE_THREADS": "two"})
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        replace(settings, concurrency=0).check()


def test_engine_reads_labels_and_preprocessing_from_the_model(model_file):
    engine = Engine(ServeSettings(model=str(model_file)))
    try:
        info = read_deployment_info(model_file)
        assert engine.info == info
        assert (engine.resize, engine.crop, engine.num_classes) == (256, 224, 1000)
        probs = engine.probabilities(engine.prepare(CAT.read_bytes(), "cat.jpg")[np.newaxis])
        assert probs.shape == (1, 1000) and abs(float(probs.sum()) - 1) < 1e-4
        best = engine.top_k(probs[0], 3)
        assert [row["english"] for row in best] == [info.label(row["id"]) for row in best]
    finally:
        engine.close()


def test_engine_refuses_a_file_without_metadata_or_missing(tmp_path, model_file):
    with pytest.raises(FileNotFoundError, match="No model file"):
        Engine(ServeSettings(model=str(tmp_path / "missing.onnx")))
    plain = export_onnx(TinyClassifier().eval(), tmp_path / "plain.onnx")  # no LoadedModel: no metadata
    with pytest.raises(ValueError, match="lacks the deployment metadata"):
        Engine(ServeSettings(model=str(plain)))


def test_service_imports_no_torch(model_file):
    code = ("import sys; from course_utils.serve.app import Engine, ServeSettings, create_app; "
            "import course_utils.serve.__main__; "
            f"create_app(engine=Engine(ServeSettings(model={str(model_file)!r}))); "
            "heavy = ('torch', 'torchvision', 'onnx', 'pandas', 'matplotlib'); "
            "print(sorted(m for m in heavy if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_timeout_answers_504_and_the_worker_stays_healthy(model_file):
    app = create_app(ServeSettings(model=str(model_file), timeout_s=1e-6))
    with TestClient(app) as client:
        answer = client.post("/predict", files={"file": ("cat.jpg", CAT.read_bytes(), "image/jpeg")})
        assert answer.status_code == 504
        assert "took longer than" in answer.json()["error"]
        assert client.get("/health").json()["in_flight"] == 0


def test_good_and_bad_requests_over_http(model_file, tmp_path):
    port = free_port()
    with start_service(uvicorn_command(model_file, port), port, tmp_path / "service.log") as service:
        health = httpx.get(f"{service.url}/health").json()
        assert {k: health[k] for k in ("status", "model", "provider")} == {
            "status": "ok", "model": "tiny", "provider": "CPUExecutionProvider"}
        answer = httpx.post(f"{service.url}/predict", params={"k": 3},
                            files={"file": ("cat.jpg", CAT.read_bytes(), "image/jpeg")})
        assert answer.status_code == 200
        body = answer.json()
        assert set(body) == {"model", "weights", "ms", "top_k"} and len(body["top_k"]) == 3
        probabilities = [row["probability"] for row in body["top_k"]]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1
        assert httpx.get(f"{service.url}/docs").status_code == 200
        assert "/predict" in httpx.get(f"{service.url}/openapi.json").json()["paths"]
        with httpx.Client(base_url=service.url, timeout=30) as client:
            for call in bad_calls(CAT.read_bytes()):
                answer = client.request(call.method, call.path, params=call.params, files=call.files,
                                        data=call.data, content=call.content, headers=call.headers)
                assert answer.status_code == call.expect, (call.kind, answer.text)
                message = answer.json()["error"]
                assert isinstance(message, str) and len(message) > 20, (call.kind, message)
        assert httpx.get(f"{service.url}/health").status_code == 200
    assert "Traceback" not in service.log.read_text()


def test_bad_request_messages_say_what_to_send(model_file):
    with TestClient(create_app(ServeSettings(model=str(model_file)))) as client:
        errors = {call.kind: client.request(call.method, call.path, params=call.params, files=call.files,
                                            data=call.data, content=call.content, headers=call.headers
                                            ).json()["error"] for call in bad_calls(CAT.read_bytes())}
    assert "field named 'file'" in errors["wrong field name"]
    assert "the form has ['image']" in errors["wrong field name"]
    assert "not an image format" in errors["not an image"]
    assert "incomplete" in errors["truncated JPEG"]
    assert "too many pixels" in errors["too many pixels"]
    assert "limit of 10 MB" in errors["over the size limit"]
    assert errors["k=0"].startswith("k must be a whole number from 1 to 1000, got 0.")
    assert "got 'five'" in errors["k=five"]


def test_a_full_queue_answers_503_with_retry_after(model_file, large_jpeg, tmp_path):
    port = free_port()
    command = uvicorn_command(model_file, port, concurrency=1, queue=0)
    with start_service(command, port, tmp_path / "service.log") as service:
        def post(_: int) -> httpx.Response:
            return httpx.post(f"{service.url}/predict", timeout=60,
                              files={"file": ("big.jpg", large_jpeg, "image/jpeg")})

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(post, range(6)))
        statuses = sorted(a.status_code for a in answers)
        assert set(statuses) == {200, 503} and statuses[0] == 200, statuses
        busy = next(a for a in answers if a.status_code == 503)
        assert busy.headers["retry-after"] == "1" and "busy" in busy.json()["error"]
        assert httpx.get(f"{service.url}/health").status_code == 200


def test_sigterm_lets_in_flight_requests_finish(model_file, large_jpeg, tmp_path):
    port = free_port()
    service = start_service(uvicorn_command(model_file, port, concurrency=1, queue=16), port,
                            tmp_path / "service.log")
    try:
        with ThreadPoolExecutor(4) as pool:
            pending = [pool.submit(httpx.post, f"{service.url}/predict", timeout=60,
                                   files={"file": ("big.jpg", large_jpeg, "image/jpeg")}) for _ in range(4)]
            deadline = time.monotonic() + 30
            while httpx.get(f"{service.url}/health").json()["in_flight"] < 4:
                assert time.monotonic() < deadline, "the four requests never were in the service at once"
                time.sleep(0.005)
            service.process.send_signal(signal.SIGTERM)
            statuses = [future.result().status_code for future in pending]
        assert statuses == [200] * 4
        assert service.process.wait(30) in (0, -signal.SIGTERM)
        log = service.log.read_text()
        assert "Waiting for connections to close" in log or "Finished server process" in log, log
    finally:
        service.stop()


def test_serve_extra_installs_without_torch():
    serve, course = (requirement_closure("course-utils", (extra,)) for extra in ("serve", "course"))
    assert {"fastapi", "uvicorn", "python-multipart", "onnxruntime", "numpy", "pillow"} <= serve
    assert not {"torch", "torchvision", "onnx", "pandas", "matplotlib"} & serve
    assert {"torch", "fastapi", "ray"} <= course
    sizes = installed_sizes()
    serve_mb, course_mb = (closure_size_mb("course-utils", (extra,), sizes) for extra in ("serve", "course"))
    assert 0 < serve_mb < course_mb


def test_make_serve_settings_reach_the_command_line():
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    recipe = makefile[makefile.index("\nserve:"):].split("\n\n")[0]
    for option in ("--model $(MODEL)", "--port $(PORT)", "--workers $(WORKERS)", "--threads $(THREADS)"):
        assert option in recipe, recipe
