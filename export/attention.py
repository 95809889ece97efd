"""Model A's CBAM spatial-attention map as a second, optional output of ``frame_cnn.onnx``.

The map (one sigmoid per position of the last conv block, 28×28 for a 224 input) is already computed
on the way to P(fake), so exposing it costs a copy. ``--explain`` draws it over the face; graphs
without it (older exports) still run, with nothing to draw.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

ATTENTION_OUTPUT = "attention"
"""Graph output name: (N, H, W) float32 in 0..1, rows top to bottom over the model's input crop."""


def _spatial_sigmoids(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    return [n for n in graph.node if n.op_type == "Sigmoid" and "spatial_attention" in n.name]


def add_attention_output(model: onnx.ModelProto) -> bool:
    """Expose the spatial-attention sigmoid as output ``attention`` (N, H, W); False when there is none.

    tf2onnx names nodes after the Keras layers (``…/cbam/spatial_attention/conv2d/Sigmoid``), for
    our models and notebook A's alike; the sigmoid's single channel is squeezed away."""
    graph = model.graph
    if any(o.name == ATTENTION_OUTPUT for o in graph.output):
        return True
    found = _spatial_sigmoids(graph)
    if len(found) != 1:
        return False
    source = found[0].output[0]
    inferred = shape_inference.infer_shapes(model)
    shapes = {v.name: v.type.tensor_type.shape for v in [*inferred.graph.value_info, *inferred.graph.output]}
    if source not in shapes:
        return False
    dims = [d.dim_value if d.HasField("dim_value") else None for d in shapes[source].dim]
    if len(dims) != 4 or 1 not in (dims[1], dims[3]):
        return False
    channel_axis, (h, w) = (1, dims[2:]) if dims[1] == 1 else (3, dims[1:3])
    axes = f"{ATTENTION_OUTPUT}_squeeze_axes"
    graph.initializer.append(numpy_helper.from_array(np.array([channel_axis], np.int64), axes))
    graph.node.append(helper.make_node("Squeeze", [source, axes], [ATTENTION_OUTPUT], name="dfstream/attention"))
    graph.output.append(helper.make_tensor_value_info(ATTENTION_OUTPUT, onnx.TensorProto.FLOAT, ["N", h, w]))
    return True


def without_attention_output(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy without the ``attention`` output (for quantisation, which would calibrate the map as an
    output in its own right and give the main path coarser scales; the int8 graph gets it back)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    kept_outputs = [o for o in graph.output if o.name != ATTENTION_OUTPUT]
    kept_nodes = [n for n in graph.node if ATTENTION_OUTPUT not in n.output]
    axes = f"{ATTENTION_OUTPUT}_squeeze_axes"
    kept_inits = [i for i in graph.initializer if i.name != axes]
    del graph.output[:], graph.node[:], graph.initializer[:]
    graph.output.extend(kept_outputs)
    graph.node.extend(kept_nodes)
    graph.initializer.extend(kept_inits)
    return out


def keras_attention(model: Any, images: np.ndarray) -> np.ndarray | None:
    """The same map computed by Keras (N, H, W), for the export's parity check; None if not reachable."""
    import keras
    from keras import ops

    from dfstream.models.cnn_cbam import CBAM

    blocks = [layer for layer in model.layers if isinstance(layer, CBAM)]  # notebook A's load as ours too
    if len(blocks) != 1:
        return None
    cbam = blocks[0]
    spatial = getattr(cbam, "spatial_attention", None)
    channel = getattr(cbam, "channel_attention", None)
    if spatial is None or channel is None or getattr(spatial, "conv", None) is None:
        return None
    features = keras.Model(model.inputs[0], cbam.input)(images, training=False)
    gated = channel(features)
    pooled = ops.concatenate([ops.mean(gated, axis=-1, keepdims=True), ops.max(gated, axis=-1, keepdims=True)], -1)
    return np.asarray(spatial.conv(pooled))[..., 0]
