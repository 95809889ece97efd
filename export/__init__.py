"""ONNX export of both models, the metadata schema, and self-checks."""
