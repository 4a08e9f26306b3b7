"""An HTTP service for the course's classifier, without PyTorch (taught in notebook 11).

- :mod:`course_utils.serve.app`: the FastAPI app factory, its settings and its ONNX Runtime engine;
- ``python -m course_utils.serve``: export the model if needed, then start uvicorn (``make serve``);
- :mod:`course_utils.serve.model_file`: the ``.onnx`` file a service serves;
- :mod:`course_utils.serve.launch`: start a service as a child process and stop it (tests, notebook);
- :mod:`course_utils.serve.ray_app`: the same app on Ray Serve, with replicas and dynamic batching;
- :mod:`course_utils.serve.footprint`: installed size and memory of a deployment.

Import the modules by name; this package file imports nothing, so that each entry point loads
only what it needs.
"""
