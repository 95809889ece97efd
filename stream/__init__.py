"""Streaming runtime. Imports neither torch nor TensorFlow."""
