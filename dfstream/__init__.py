"""dfstream: real-time streaming deepfake detection."""

__version__ = "0.1.0"
