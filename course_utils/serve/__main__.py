"""Start the classification service: ``python -m course_utils.serve`` (what ``make serve`` runs).

It exports the model if needed (in a child process, see :mod:`course_utils.serve.model_file`),
passes the settings to the workers as ``COURSE_SERVE_*`` variables, and starts uvicorn with the
app factory :func:`course_utils.serve.app.create_app`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import uvicorn

from course_utils.benchmark import default_threads
from course_utils.paths import display_path
from course_utils.serve.app import ServeSettings
from course_utils.serve.model_file import ensure_model


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; every option has a default that works on a laptop."""
    parser = argparse.ArgumentParser(prog="python -m course_utils.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18",
                        help="a model name (exported if needed) or an .onnx file")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes, each with its own session")
    parser.add_argument("--threads", type=int, default=0,
                        help="intra-op threads per worker (default: the cores shared among the workers)")
    parser.add_argument("--concurrency", type=int, default=1, help="requests run at once in one worker")
    parser.add_argument("--queue", type=int, default=16, help="requests waiting in one worker before 503")
    parser.add_argument("--timeout-s", type=float, default=10.0, help="a request's time limit (then 504)")
    parser.add_argument("--max-upload-mb", type=float, default=10.0, help="largest request body (then 413)")
    parser.add_argument("--no-access-log", dest="access_log", action="store_false",
                        help="do not print a line per request")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Export the model if needed, then serve it with uvicorn until SIGTERM or Ctrl+C."""
    args = parse_args(argv)
    if args.workers < 1:
        raise SystemExit(f"--workers must be at least 1, got {args.workers}")
    threads = args.threads or max(1, default_threads() // args.workers)
    if not args.model.endswith(".onnx"):
        print(f"Exporting {args.model} with PyTorch in a child process, or reusing an up-to-date file...",
              flush=True)
    settings = ServeSettings(model=str(ensure_model(args.model)), threads=threads,
                             concurrency=args.concurrency, queue=args.queue, timeout_s=args.timeout_s,
                             max_upload_mb=args.max_upload_mb)
    settings.check()
    os.environ.update(settings.to_env())  # every worker process builds its app from these
    print(f"Serving {display_path(settings.model)} at http://{args.host}:{args.port} "
          f"({args.workers} worker(s) x {threads} thread(s), {args.concurrency} request(s) at once "
          f"per worker); API docs at /docs. Stop with Ctrl+C.", flush=True)
    uvicorn.run("course_utils.serve.app:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, access_log=args.access_log,
                timeout_graceful_shutdown=int(args.timeout_s) + 5)


if __name__ == "__main__":
    main()
