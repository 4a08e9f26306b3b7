"""The classification service: one FastAPI app, built by :func:`create_app` (taught in notebook 11).

uvicorn calls the factory in every worker process (``uvicorn --factory
course_utils.serve.app:create_app``, which ``make serve`` runs), and the Ray Serve deployment in
:mod:`course_utils.serve.ray_app` calls it in every replica. Each process creates one ONNX Runtime
session when it starts, and reads the preprocessing and the labels from the metadata that
:func:`course_utils.export.export_onnx` wrote into the model file. Nothing here imports PyTorch.

Work is bounded three ways: the size of a request body (``max_upload_mb``, else 413), the requests
inside one worker (``concurrency`` running plus ``queue`` waiting, else 503 with ``Retry-After``),
and the time one request may take (``timeout_s``, else 504).
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from course_utils.inference import softmax, top_k
from course_utils.metadata import DeploymentInfo, parse_metadata
from course_utils.paths import display_path
from course_utils.preprocess import MAX_PIXELS, ImageReadError, decode_rgb, preprocess

ENV_PREFIX = "COURSE_SERVE_"
SEND_FILE = ("Send the image as multipart/form-data in a field named 'file', "
             "for example: curl -F file=@cat.jpg http://127.0.0.1:8000/predict")


@dataclass(frozen=True)
class ServeSettings:
    """What one worker process serves and how much work it takes on (environment: ``COURSE_SERVE_*``)."""

    model: str  # the .onnx file, exported with course_utils.export.export_onnx (it carries the metadata)
    threads: int = 1  # intra-op threads of the worker's one session
    concurrency: int = 1  # requests decoded and run at the same time in one worker
    queue: int = 16  # requests that may wait in one worker for a free slot; more get 503
    timeout_s: float = 10.0  # a request still waiting or running after this gets 504
    max_upload_mb: float = 10.0  # larger request bodies get 413 before they are read
    max_pixels: int = MAX_PIXELS  # larger images get 413 before they are decoded

    def to_env(self) -> dict[str, str]:
        """Return the settings as ``COURSE_SERVE_*`` environment variables, for worker processes."""
        return {f"{ENV_PREFIX}{key.upper()}": str(value) for key, value in asdict(self).items()}

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServeSettings:
        """Read the settings from ``COURSE_SERVE_*`` variables; ``COURSE_SERVE_MODEL`` is required."""
        environ = dict(os.environ if environ is None else environ)
        if not environ.get(f"{ENV_PREFIX}MODEL"):
            raise ValueError(f"Set {ENV_PREFIX}MODEL to the .onnx file to serve "
                             "(make serve and python -m course_utils.serve set it for you).")
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = environ.get(f"{ENV_PREFIX}{field.name.upper()}")
            if raw:
                kind = {"int": int, "float": float}.get(str(field.type), str)
                try:
                    values[field.name] = kind(raw)
                except ValueError as exc:
                    raise ValueError(f"{ENV_PREFIX}{field.name.upper()}={raw!r} is not a valid "
                                     f"{kind.__name__}.") from exc
        return cls(**values)

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        for name in ("threads", "concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if self.queue < 0 or self.timeout_s <= 0 or self.max_upload_mb <= 0 or self.max_pixels < 1:
            raise ValueError(f"queue must be >= 0 and timeout_s, max_upload_mb, max_pixels > 0: {self}")


class Engine:
    """One ONNX Runtime session, its deployment metadata, and the threads that call it."""

    def __init__(self, settings: ServeSettings) -> None:
        settings.check()
        path = Path(settings.model)
        if not path.is_file():
            raise FileNotFoundError(f"No model file {display_path(path)}: export it with course_utils."
                                    "export.export_onnx(load_model(name), path), or run make serve.")
        options = ort.SessionOptions()
        options.intra_op_num_threads = settings.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.info: DeploymentInfo = parse_metadata(self.session.get_modelmeta().custom_metadata_map,
                                                   display_path(path))
        self.settings = settings
        self.input_name = self.session.get_inputs()[0].name
        self.num_classes = len(self.info.labels)
        outputs = self.session.get_outputs()[0].shape[-1]
        if isinstance(outputs, int) and outputs != self.num_classes:
            raise ValueError(f"{display_path(path)} outputs {outputs} classes but its metadata names "
                             f"{self.num_classes}: export it again with export_onnx.")
        self.resize = int(self.info.preprocess["resize_short_side"])
        self.crop = int(self.info.preprocess["center_crop"])
        self.executor = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="classify")

    def prepare(self, data: bytes, name: str) -> np.ndarray:
        """Decode an upload and preprocess it as the model's metadata says: a (3, crop, crop) array."""
        return preprocess(decode_rgb(data, name, self.settings.max_pixels), self.resize, self.crop)

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Run the session on an (N, 3, H, W) batch and return (N, classes) probabilities."""
        return softmax(self.session.run(None, {self.input_name: batch})[0])

    def top_k(self, probs: np.ndarray, k: int) -> list[dict[str, Any]]:
        """The ``k`` most probable classes of one image, with their names from the metadata."""
        ids, values = top_k(probs, k)
        return [{"id": int(i), "english": self.info.label(i), "chinese": self.info.label(i, "chinese"),
                 "probability": float(p)} for i, p in zip(ids, values)]

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on one of the ``concurrency`` threads of this engine."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def close(self) -> None:
        """Let running work finish, then release the threads."""
        self.executor.shutdown(wait=True, cancel_futures=True)


class Admission:
    """Lets at most ``running + waiting`` requests into one worker; the event loop is its only user."""

    def __init__(self, running: int, waiting: int) -> None:
        self.capacity = running + waiting
        self.inside = 0

    def enter(self) -> bool:
        """Take a place if one is free; False means the request must be refused now."""
        if self.inside >= self.capacity:
            return False
        self.inside += 1
        return True

    def leave(self) -> None:
        self.inside -= 1


class ClassProbability(BaseModel):
    id: int
    english: str
    chinese: str
    probability: float


class Prediction(BaseModel):
    model: str
    weights: str
    ms: float
    top_k: list[ClassProbability]


class Health(BaseModel):
    status: str
    model: str
    weights: str
    provider: str
    in_flight: int
    capacity: int


class Error(BaseModel):
    error: str


class UploadLimit:
    """ASGI middleware: refuse a request body over ``limit`` bytes with 413 and ``message``.

    A body whose Content-Length announces too much is refused before any of it is read; a body
    sent without a length (chunked) is counted as it arrives and refused once it passes the limit.
    """

    def __init__(self, app: ASGIApp, limit: int, message: str) -> None:
        self.app, self.limit, self.message = app, limit, message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.limit:
            await error(413, self.message)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise HTTPException(413)  # the app's handler answers with the message
            return message

        await self.app(scope, counted, send)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The service's one error shape: ``{"error": "what was wrong and what to send instead"}``."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def image_error_status(exc: ImageReadError) -> int:
    """415 for something that is not an image, 413 for too many pixels, 400 if empty, else 422."""
    if exc.reason.startswith("not an image"):
        return 415
    if exc.reason.startswith("too many pixels"):
        return 413
    if exc.reason.startswith("the file is empty"):
        return 400
    return 422


Infer = Callable[[np.ndarray], Awaitable[np.ndarray]]


def create_app(settings: ServeSettings | None = None, *, engine: Engine | None = None,
               infer: Infer | None = None) -> FastAPI:
    """Build the service. uvicorn calls it with no arguments (settings from ``COURSE_SERVE_*``).

    ``engine`` and ``infer`` let a Ray Serve replica pass the engine it created and its
    ``@serve.batch`` method; by default the app creates its engine at start-up and runs each
    request's batch of one on the engine's threads.
    """
    settings = settings or (engine.settings if engine else ServeSettings.from_env())
    settings.check()
    limit = int(settings.max_upload_mb * 2**20)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = engine or Engine(settings)  # one session per process, at start-up
        app.state.admission = Admission(settings.concurrency, settings.queue)
        yield
        app.state.engine.close()

    app = FastAPI(title="Image classifier (ONNX Runtime)", lifespan=lifespan,
                  description="Upload an image to /predict; the service answers with the top-k classes.")

    too_large = (f"The request body is larger than the limit of {settings.max_upload_mb:g} MB. "
                 "Send a smaller image (downscale it, or save it as JPEG).")
    app.add_middleware(UploadLimit, limit=limit, message=too_large)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        advice = {404: f"No endpoint {request.url.path}: use GET /health, POST /predict or GET /docs.",
                  405: f"{request.method} is not allowed on {request.url.path}: use GET /health and "
                       "POST /predict (the image in a form field named 'file').",
                  413: too_large}
        return error(exc.status_code, advice.get(exc.status_code, str(exc.detail)),
                     getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        if tuple(first["loc"][:2]) == ("query", "k"):
            return error(400, k_message(request.app.state.engine.num_classes, first.get("input")))
        if tuple(first["loc"][:2]) == ("body", "file"):
            return error(400, f"The field 'file' holds text, not a file. {SEND_FILE}")
        return error(400, f"Invalid request ({'.'.join(map(str, first['loc']))}: {first['msg']}). "
                          f"{SEND_FILE}")

    async def classify(engine_: Engine, data: bytes, name: str) -> np.ndarray:
        x = await engine_.call(engine_.prepare, data, name)  # decode + preprocess on a worker thread
        if infer is not None:
            return await infer(x[np.newaxis])
        return await engine_.call(engine_.probabilities, x[np.newaxis])

    @app.get("/health", response_model=Health)
    async def health(request: Request) -> dict[str, Any]:
        """200 while the worker can take requests: the model it serves and how busy it is."""
        state = request.app.state
        return {"status": "ok", "model": state.engine.info.model, "weights": state.engine.info.weights,
                "provider": state.engine.session.get_providers()[0],
                "in_flight": state.admission.inside, "capacity": state.admission.capacity}

    @app.post("/predict", response_model=Prediction,
              responses={code: {"model": Error} for code in (400, 413, 415, 422, 503, 504)})
    async def predict(request: Request, file: UploadFile | None = File(None, description="the image"),
                      k: int = Query(5, description="how many classes to return, 1 to the number of classes")
                      ) -> Any:
        """Classify one uploaded image; answer with the ``k`` most probable classes."""
        state = request.app.state
        engine_: Engine = state.engine
        if file is None:
            return error(400, missing_file_message(await request.form() if is_form(request) else None))
        if not 1 <= k <= engine_.num_classes:
            return error(400, k_message(engine_.num_classes, k))
        if not state.admission.enter():
            return error(503, f"The service is busy ({state.admission.capacity} requests in this worker). "
                              "Retry after a second.", headers={"Retry-After": "1"})
        started = time.perf_counter()
        try:
            data = await file.read()
            probs = await asyncio.wait_for(classify(engine_, data, file.filename or "upload"),
                                           settings.timeout_s)
        except ImageReadError as exc:
            return error(image_error_status(exc),
                         f"{exc} Send a complete JPEG, PNG, WebP, BMP, GIF or TIFF file.")
        except ValueError as exc:  # decoded, but its aspect ratio is too extreme to resize safely
            return error(422, str(exc))
        except asyncio.TimeoutError:
            return error(504, f"The request took longer than {settings.timeout_s:g} s. Retry later, "
                              "or send a smaller image.")
        finally:
            state.admission.leave()
        return {"model": engine_.info.model, "weights": engine_.info.weights,
                "ms": round((time.perf_counter() - started) * 1e3, 2), "top_k": engine_.top_k(probs[0], k)}

    return app


def is_form(request: Request) -> bool:
    """True when the request says it carries a multipart or URL-encoded form."""
    kind = request.headers.get("content-type", "")
    return kind.startswith(("multipart/form-data", "application/x-www-form-urlencoded"))


def k_message(classes: int, given: object) -> str:
    """What to say about a ``k`` that is not a whole number from 1 to ``classes``."""
    return f"k must be a whole number from 1 to {classes}, got {given!r}. Send for example ?k=5."


def missing_file_message(form: Any) -> str:
    """Say what arrived instead of a file in field 'file', and what to send."""
    if form is None:
        return f"The request has no form with an image. {SEND_FILE}"
    if "file" in form:
        return f"The field 'file' holds text, not a file. {SEND_FILE}"
    if form:
        return f"No field named 'file' (the form has {sorted(form.keys())}). {SEND_FILE}"
    return f"The form is empty. {SEND_FILE}"
