"""Model definitions, data readers, training and evaluation (torch / TensorFlow)."""
