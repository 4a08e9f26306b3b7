"""The load generator: bounded runs, loopback only, summaries, the bad requests it builds."""

from __future__ import annotations

import struct
import sys
import time

import pandas as pd
import pytest

from course_utils.loadtest import (Call, Stream, bad_calls, check_loopback, pixel_bomb_png, plot_sweep,
                                   run_load, status_table, summarise)
from course_utils.paths import data_dir
from course_utils.preprocess import ImageReadError, decode_rgb
from course_utils.serve.launch import free_port, start_service


@pytest.fixture(scope="module")
def file_server(tmp_path_factory):
    """Python's own HTTP server on 127.0.0.1, with a health file so that start_service can wait for it."""
    folder = tmp_path_factory.mktemp("www")
    (folder / "health").write_text('{"status": "ok"}')
    port = free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "-d", str(folder)]
    with start_service(command, port, folder.parent / "http.log") as service:
        yield service


def test_only_loopback_targets_are_accepted():
    check_loopback("http://127.0.0.1:8000")
    check_loopback("http://localhost:8000/batch8")
    for url in ("http://10.0.0.7:8000", "http://192.168.1.2", "http://example.com"):
        with pytest.raises(ValueError, match="only target this machine"):
            check_loopback(url)


def test_a_run_stops_after_its_request_count(file_server):
    run = run_load(file_server.url, [Stream("get", [Call("health", method="GET", path="/health")], 4, 25)],
                   duration_s=30)
    assert len(run.records) == 25 and (run.records["status"] == 200).all()
    summary = summarise(run.records)
    assert summary["requests"] == 25 and summary["failed"] == 0 and summary["throughput_rps"] > 0
    assert summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"]
    assert run.wall_s > 0 and run.client_cpu_s >= 0


def test_a_run_stops_after_its_duration(file_server):
    started = time.perf_counter()
    run = run_load(file_server.url, [Stream("get", [Call("health", method="GET", path="/health")], 2, 10**9)],
                   duration_s=1.0)
    assert time.perf_counter() - started < 15  # the duration plus one request's time, with room for load
    assert 0 < len(run.records) < 10**9


def test_streams_run_together_and_failures_are_counted(file_server):
    streams = [Stream("good", [Call("health", method="GET", path="/health")], 2, 10),
               Stream("bad", [Call("missing", expect=404, method="GET", path="/nothing"),
                              Call("wrong expectation", expect=200, method="GET", path="/nothing")], 2, 10)]
    run = run_load(file_server.url, streams, duration_s=30)
    table = status_table(run.records)
    assert set(table.index) == {"health", "missing", "wrong expectation"}
    assert table.loc["missing", "status 404"] == 5 and table.loc["wrong expectation", "status 404"] == 5
    assert summarise(run.records[run.records["stream"] == "bad"])["failed"] == 5


def test_no_answer_counts_as_status_zero():
    port = free_port()  # nothing listens there
    run = run_load(f"http://127.0.0.1:{port}", [Stream("x", [Call("get", method="GET", path="/")], 1, 3)],
                   duration_s=10, timeout_s=2)
    assert run.records["status"].tolist() == [0, 0, 0]
    assert summarise(run.records)["failed"] == 3


def test_pixel_bomb_is_refused_before_decoding():
    data = pixel_bomb_png(30_000, 20_000)
    assert len(data) < 200
    assert struct.unpack(">II", data[16:24]) == (30_000, 20_000)  # what the PNG header declares
    with pytest.raises(ImageReadError, match="too many pixels"):
        decode_rgb(data, "bomb.png")


def test_bad_calls_cover_every_case_once():
    calls = bad_calls((data_dir() / "images" / "tabby_cat.jpg").read_bytes(), max_upload_mb=1)
    kinds = [call.kind for call in calls]
    assert len(kinds) == len(set(kinds))
    assert all(400 <= call.expect < 500 for call in calls)
    oversized = next(call for call in calls if call.kind == "over the size limit")
    assert len(oversized.files["file"][1]) > 2**20


def test_plot_sweep_draws_latency_and_throughput():
    table = pd.DataFrame({"config": ["a", "a", "b", "b"], "concurrency": [1, 2, 1, 2],
                          "p50_ms": [10, 12, 9, 11], "p95_ms": [12, 15, 11, 14], "p99_ms": [13, 20, 12, 16],
                          "throughput_rps": [90, 150, 100, 160]})
    figure = plot_sweep(table, by="config")
    assert len(figure.axes) == 2
    assert len(figure.axes[1].lines) == 2

