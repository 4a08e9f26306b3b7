"""A bounded load generator for the classification service, on httpx's async client (notebook 11).

``concurrency`` clients each send a request, wait for the answer, and send the next (a closed
loop), until the stream has sent ``requests`` requests or ``duration_s`` has passed. Every loop is
bounded in count and time, and only loopback addresses are accepted as targets.
"""

from __future__ import annotations

import asyncio
import io
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence
from urllib.parse import urlsplit

import httpx
import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Call:
    """One request: a name for the tables, the status the service should answer, httpx arguments."""

    kind: str
    expect: int = 200
    method: str = "POST"
    path: str = "/predict"
    params: dict[str, Any] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes, str]] | None = None
    data: dict[str, str] | None = None
    content: bytes | None = None
    headers: dict[str, str] | None = None

    async def send(self, client: httpx.AsyncClient) -> httpx.Response:
        return await client.request(self.method, self.path, params=self.params, files=self.files,
                                    data=self.data, content=self.content, headers=self.headers)


@dataclass(frozen=True)
class Stream:
    """``requests`` requests taken in turn from ``calls``, sent by ``concurrency`` clients at once."""

    name: str
    calls: Sequence[Call]
    concurrency: int
    requests: int


@dataclass
class LoadRun:
    """What a run measured: one row per request, the run's wall time and the client's CPU time."""

    records: pd.DataFrame  # stream, kind, expect, status (0: no answer), ms, start_s, end_s
    wall_s: float
    client_cpu_s: float

    @property
    def client_cores(self) -> float:
        """How many cores the load generator itself kept busy, on average."""
        return self.client_cpu_s / self.wall_s if self.wall_s > 0 else 0.0


def image_call(path: Path | str, k: int = 5) -> Call:
    """A good request: the image file at ``path`` in form field ``file``."""
    path = Path(path)
    return Call("good", files={"file": (path.name, path.read_bytes(), "application/octet-stream")},
                params={"k": k})


def check_loopback(url: str) -> None:
    """Raise ValueError unless ``url`` points at this machine's loopback interface."""
    host = urlsplit(url).hostname
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"Load tests only target this machine (127.0.0.1), not {host!r}.")


def run_load(url: str, streams: Sequence[Stream], *, duration_s: float, timeout_s: float = 30.0) -> LoadRun:
    """Send every stream to ``url`` at the same time; stop after their request counts or ``duration_s``.

    Runs its own event loop in a thread, so it works in a script, in pytest and in a notebook
    (whose kernel already runs an event loop). A request without an answer after ``timeout_s``
    counts with status 0, as does any transport error.
    """
    import pandas as pd

    check_loopback(url)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            cpu = time.thread_time()
            outcome["rows"], outcome["wall_s"] = asyncio.run(_drive(url, streams, duration_s, timeout_s))
            outcome["cpu_s"] = time.thread_time() - cpu
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="load", daemon=True)
    thread.start()
    thread.join(duration_s + timeout_s + 30)
    if "error" in outcome:
        raise outcome["error"]
    if thread.is_alive():
        raise RuntimeError(f"The load run did not end within {duration_s + timeout_s + 30:g} s.")
    columns = ["stream", "kind", "expect", "status", "ms", "start_s", "end_s"]
    return LoadRun(pd.DataFrame(outcome["rows"], columns=columns), outcome["wall_s"], outcome["cpu_s"])


async def _drive(url: str, streams: Sequence[Stream], duration_s: float,
                 timeout_s: float) -> tuple[list[tuple], float]:
    rows: list[tuple] = []
    total = sum(stream.concurrency for stream in streams)
    limits = httpx.Limits(max_connections=total, max_keepalive_connections=total)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout_s) as client:
        started = time.perf_counter()
        deadline = started + duration_s

        async def client_loop(stream: Stream, counter: list[int]) -> None:
            while counter[0] < stream.requests and time.perf_counter() < deadline:
                call = stream.calls[counter[0] % len(stream.calls)]
                counter[0] += 1
                begin = time.perf_counter()
                try:
                    status = (await call.send(client)).status_code
                except httpx.HTTPError:
                    status = 0
                end = time.perf_counter()
                rows.append((stream.name, call.kind, call.expect, status, (end - begin) * 1e3,
                             begin - started, end - started))

        tasks = []
        for stream in streams:
            counter = [0]  # shared by the stream's clients: the event loop runs one at a time
            tasks += [client_loop(stream, counter) for _ in range(stream.concurrency)]
        await asyncio.gather(*tasks)
    return rows, time.perf_counter() - started


def summarise(records: pd.DataFrame) -> dict[str, float]:
    """Requests, failures (any status but the expected one), p50/p95/p99 of the answered, throughput."""
    ok = records[records["status"] == records["expect"]]
    span = records["end_s"].max() - records["start_s"].min() if len(records) else 0.0
    p50, p95, p99 = np.percentile(ok["ms"], [50, 95, 99]) if len(ok) else (np.nan,) * 3
    return {"requests": len(records), "failed": len(records) - len(ok), "p50_ms": p50, "p95_ms": p95,
            "p99_ms": p99, "throughput_rps": len(ok) / span if span > 0 else 0.0}


def measure(url: str, calls: Sequence[Call], concurrency: int, requests: int, duration_s: float,
            warmup: int = 0) -> dict[str, float]:
    """One closed-loop run of good requests: :func:`summarise` plus the cores the client used.

    ``warmup`` requests are sent first, one at a time, and not counted: the first requests pay for
    connections, lazy initialisation and allocations, as the first run in notebook 05 does.
    """
    if warmup:
        run_load(url, [Stream("warm-up", calls, 1, warmup)], duration_s=duration_s)
    run = run_load(url, [Stream("load", calls, concurrency, requests)], duration_s=duration_s)
    return {"concurrency": concurrency, **summarise(run.records), "client_cores": run.client_cores}


def sweep(url: str, calls: Sequence[Call], levels: Sequence[int], requests: int, duration_s: float,
          warmup: int = 3) -> pd.DataFrame:
    """:func:`measure` at each concurrency in ``levels``, one row each (warm-up before the first only)."""
    import pandas as pd

    rows = [measure(url, calls, level, requests, duration_s, warmup if i == 0 else 0)
            for i, level in enumerate(levels)]
    return pd.DataFrame(rows)


def status_table(records: pd.DataFrame) -> pd.DataFrame:
    """How many requests of each kind got each status code (0: no answer)."""
    table = records.pivot_table(index=["kind", "expect"], columns="status", values="ms", aggfunc="count",
                                fill_value=0)
    table.columns = [f"status {c}" for c in table.columns]
    order = list(dict.fromkeys(records["kind"]))
    return table.reset_index().set_index("kind").loc[order]


def pixel_bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A PNG of a few bytes whose header declares ``width`` x ``height`` pixels."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)  # IHDR's width and height, after its length and type
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # IHDR's checksum
    return bytes(data)


def bad_calls(jpeg: bytes, max_upload_mb: float = 10.0, classes: int = 1000) -> list[Call]:
    """One request of every kind the service must refuse, with the status it should answer."""
    png = io.BytesIO()
    with Image.open(io.BytesIO(jpeg)) as image:
        image.convert("RGB").save(png, "PNG")
    png_bytes = png.getvalue()
    corrupt = png_bytes[:200] + bytes(b ^ 0xFF for b in png_bytes[200:400]) + png_bytes[400:]
    panorama = io.BytesIO()
    Image.new("RGB", (1, 4000), (90, 120, 200)).save(panorama, "PNG")
    good = {"file": ("cat.jpg", jpeg, "image/jpeg")}
    return [
        Call("empty body", 400),
        Call("raw bytes, no form", 400, content=jpeg, headers={"content-type": "image/jpeg"}),
        Call("wrong field name", 400, files={"image": ("cat.jpg", jpeg, "image/jpeg")}),
        Call("text in field 'file'", 400, data={"file": "cat.jpg"}),
        Call("empty file", 400, files={"file": ("empty.jpg", b"", "image/jpeg")}),
        Call("not an image", 415, files={"file": ("notes.jpg", b"Rice, tea, batteries.\n", "image/jpeg")}),
        Call("truncated JPEG", 422, files={"file": ("half.jpg", jpeg[: len(jpeg) // 2], "image/jpeg")}),
        Call("corrupt PNG", 422, files={"file": ("corrupt.png", corrupt, "image/png")}),
        Call("panorama 1x4000", 422, files={"file": ("panorama.png", panorama.getvalue(), "image/png")}),
        Call("too many pixels", 413, files={"file": ("bomb.png", pixel_bomb_png(), "image/png")}),
        Call("over the size limit", 413,
             files={"file": ("huge.jpg", jpeg + bytes(int(max_upload_mb * 2**20)), "image/jpeg")}),
        Call("k=0", 400, files=good, params={"k": 0}),
        Call(f"k={classes + 1}", 400, files=good, params={"k": classes + 1}),
        Call("k=five", 400, files=good, params={"k": "five"}),
        Call("GET /predict", 405, method="GET"),
        Call("unknown path", 404, path="/classify"),
    ]


def plot_sweep(table: pd.DataFrame, by: str | None = None) -> Figure:
    """Latency percentiles and throughput against concurrency, one line per value of column ``by``."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=80)
    groups = table.groupby(by, sort=False) if by else [("", table)]
    for i, (name, part) in enumerate(groups):
        colour = f"C{i}"
        for column, style in (("p50_ms", "-"), ("p95_ms", "--"), ("p99_ms", ":")):
            left.plot(part["concurrency"], part[column], style, marker="o", markersize=3, color=colour,
                      label=f"{name} {column[:3]}".strip())
        right.plot(part["concurrency"], part["throughput_rps"], marker="o", color=colour, label=name or None)
    for ax, ylabel in ((left, "latency (ms)"), (right, "throughput (requests/s)")):
        ax.set_xscale("log", base=2)
        levels = sorted(table["concurrency"].unique())
        ax.set_xticks(levels, [str(level) for level in levels])
        ax.minorticks_off()
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    left.set_yscale("log")
    left.legend(fontsize=7)
    if by:
        right.legend(fontsize=7)
    fig.tight_layout()
    return fig
