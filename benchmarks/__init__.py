"""Latency and throughput harness (``dfstream bench``): models, pipeline, soak; reports and plots."""
