"""Helpers for the course "Deploying an image classifier: PyTorch -> ONNX -> ONNX Runtime".

Each module does one job and is imported explicitly by the notebooks, for example
``from course_utils.export import export_onnx``. The calls a lesson is about
(``torch.onnx.export``, ``onnxruntime.InferenceSession``) stay in the notebooks.
"""

__version__ = "0.1.0"
