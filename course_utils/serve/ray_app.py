"""The same FastAPI app on Ray Serve: replicas, and dynamic batching with ``@serve.batch`` (notebook 11).

Each replica is a Ray actor (a process) that creates one :class:`~course_utils.serve.app.Engine`
and builds its app with :func:`~course_utils.serve.app.create_app`, the factory uvicorn uses.
With ``max_batch_size`` above 1, requests that arrive within ``batch_wait_s`` of each other are
stacked into one ``session.run``.

``python -m course_utils.serve.ray_app --model FILE --port PORT`` starts a local Ray cluster on
127.0.0.1 only, with usage statistics off, deploys the app and serves until SIGTERM; then it shuts
Serve and Ray down. On a multi-node cluster the same deployment runs with ``ray.init(address=...)``.
"""

from __future__ import annotations

import os

# Before Ray is imported: send nothing anywhere, and run the local cluster on the loopback
# interface (Ray otherwise binds its daemons to the machine's network address).
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import argparse  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import asdict  # noqa: E402

import numpy as np  # noqa: E402
import ray  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from ray import serve  # noqa: E402

from course_utils.serve.app import Engine, ServeSettings, create_app  # noqa: E402
from course_utils.serve.launch import LOOPBACK  # noqa: E402


@serve.deployment(ray_actor_options={"num_cpus": 1}, max_ongoing_requests=32)
@serve.ingress()
class RayClassifier:
    """A Ray Serve replica: one engine, the course's FastAPI app, optional dynamic batching."""

    def __init__(self, settings: dict, max_batch_size: int = 1, batch_wait_s: float = 0.005) -> None:
        self.engine = Engine(ServeSettings(**settings))  # one session per replica, at start-up
        self.batching = max_batch_size > 1
        self.infer_batch.set_max_batch_size(max_batch_size)
        self.infer_batch.set_batch_wait_timeout_s(batch_wait_s)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def infer_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Called once per batch: requests' (1, 3, H, W) arrays in, their (1, classes) probabilities out."""
        probs = await self.engine.call(self.engine.probabilities, np.concatenate(images))
        return [row[np.newaxis] for row in probs]

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(engine=self.engine, infer=self.infer_batch if self.batching else None)


def route(max_batch_size: int) -> str:
    """The URL prefix of the application with this batch size: ``/batch1``, ``/batch8``, ..."""
    return f"/batch{max_batch_size}"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m course_utils.serve.ray_app",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the .onnx file (exported with its metadata)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--replicas", type=int, default=1, help="replicas of each application")
    parser.add_argument("--replica-cpus", type=float, default=1.0, help="CPUs Ray reserves per replica")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per replica")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="requests decoded or run at once per replica")
    parser.add_argument("--max-batch-size", type=int, nargs="+", default=[1],
                        help="one application per value, at /batch<value> (1: no dynamic batching)")
    parser.add_argument("--batch-wait-ms", type=float, default=5.0)
    return parser.parse_args(argv)


def start_ray(attempts: int = 3) -> None:
    """Start a local Ray cluster on 127.0.0.1, without its web dashboard.

    Ray's node manager gives its helper processes 30 seconds to start; on a machine busy with other
    work they can miss that window, and Ray raises a plain ``Exception``. Then try again.
    """
    for attempt in range(1, attempts + 1):
        try:
            ray.init(include_dashboard=False, _node_ip_address=LOOPBACK, logging_level="warning")
            return
        except Exception as exc:
            if "timed out during startup" not in str(exc) or attempt == attempts:
                raise
            print(f"Ray's node did not start in time (attempt {attempt} of {attempts}); retrying.",
                  flush=True)
            ray.shutdown()


def main(argv: Sequence[str] | None = None) -> None:
    """Start Ray and Serve on 127.0.0.1, deploy :class:`RayClassifier` per batch size, serve until SIGTERM."""
    args = parse_args(argv)
    settings = asdict(ServeSettings(model=args.model, threads=args.threads, concurrency=args.concurrency))
    start_ray()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):  # after ray.init, which installs handlers of its own
        signal.signal(sig, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": LOOPBACK, "port": args.port})
        for size in args.max_batch_size:
            deployment = RayClassifier.options(num_replicas=args.replicas,
                                               ray_actor_options={"num_cpus": args.replica_cpus})
            serve.run(deployment.bind(settings, size, args.batch_wait_ms / 1e3), name=f"batch{size}",
                      route_prefix=route(size))
            print(f"Ray Serve: {args.replicas} replica(s) with max batch size {size} at "
                  f"http://{LOOPBACK}:{args.port}{route(size)}", flush=True)
        stop.wait()
    finally:
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main()
