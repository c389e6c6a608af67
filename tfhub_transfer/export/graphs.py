"""Frozen serving graphs, rewritten for converters whose op sets are smaller than TensorFlow's.

A Keras model on a TF Hub encoder is a graph of restored SavedModel functions. TFLite and
ONNX converters take it as one frozen GraphDef (variables as constants, functions inlined).
Two rewrites keep the result exact while avoiding ops the converters cannot lower:

- `expand_new_axes`: `x[:, tf.newaxis, :]` on a tensor with two unknown dimensions (the
  encoder's attention mask, [batch, seq]) is a StridedSlice with `new_axis_mask`, which
  TFLite legalises only when at most one dimension is unknown. An ExpandDims is the same
  thing and has a builtin kernel.
- `erfc_as_erf`: exact GELU is `0.5 x erfc(-x / sqrt 2)` in TensorFlow; ONNX has `Erf` but
  no `Erfc`, so `erfc(z)` becomes `1 - erf(z)` (absolute error below float32's epsilon).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import graph_pb2, node_def_pb2
from tensorflow.python.framework import tensor_util
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2


@dataclasses.dataclass
class FrozenGraph:
    """A frozen GraphDef with the tensor names of its inputs and outputs, and the outputs' structure."""

    graph_def: graph_pb2.GraphDef
    inputs: list[str]  # "name:0", in the input signature's order
    outputs: list[str]
    structured_outputs: object  # the original function's output structure (e.g. a dict)
    input_signature: list[tf.TensorSpec]

    def rewritten(self, *rewrites) -> FrozenGraph:
        graph_def = self.graph_def
        for rewrite in rewrites:
            graph_def = rewrite(graph_def)
        return dataclasses.replace(self, graph_def=graph_def)

    def as_function(self) -> tuple[tf.types.experimental.ConcreteFunction, tf.Module]:
        """A concrete function of the (rewritten) graph with the original input signature and outputs.

        Returns it with a module that holds what it captures (pass it to the TFLite converter).
        """
        graph_def = self.graph_def

        def import_graph():
            tf.compat.v1.import_graph_def(graph_def, name="")

        wrapped = tf.compat.v1.wrap_function(import_graph, [])
        pruned = wrapped.prune(self.inputs, self.outputs)
        structure = self.structured_outputs

        @tf.function(input_signature=self.input_signature)
        def serve(*args):
            return tf.nest.pack_sequence_as(structure, pruned(*args))

        holder = tf.Module()
        holder.graph = wrapped
        return serve.get_concrete_function(), holder


def freeze(function: tf.types.experimental.GenericFunction) -> FrozenGraph:
    """Freezes a `tf.function` that has an input signature (variables become constants)."""
    concrete = function.get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)
    return FrozenGraph(frozen.graph.as_graph_def(), [t.name for t in frozen.inputs if t.dtype != tf.resource],
                       [t.name for t in frozen.outputs], concrete.structured_outputs,
                       list(function.input_signature))


def _constants(graph_def: graph_pb2.GraphDef) -> dict[str, np.ndarray]:
    return {n.name: tensor_util.MakeNdarray(n.attr["value"].tensor) for n in graph_def.node if n.op == "Const"}


def _copy_header(graph_def: graph_pb2.GraphDef) -> graph_pb2.GraphDef:
    out = graph_pb2.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)
    return out


def _const(graph_def: graph_pb2.GraphDef, name: str, value, dtype: tf.DType, device: str) -> str:
    node = graph_def.node.add(name=name, op="Const", device=device)
    node.attr["dtype"].type = dtype.as_datatype_enum
    node.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(value, dtype))
    return name


def _new_axes_only(node: node_def_pb2.NodeDef, strides) -> list[int] | None:
    """The new-axis positions of a StridedSlice that only inserts axes (every other entry a full `:`)."""
    attr = node.attr
    if strides is None or attr["shrink_axis_mask"].i or attr["ellipsis_mask"].i or not attr["new_axis_mask"].i:
        return None
    entries = range(len(np.atleast_1d(strides)))
    new = [i for i in entries if attr["new_axis_mask"].i >> i & 1]
    full = all(attr["begin_mask"].i >> i & 1 and attr["end_mask"].i >> i & 1 and np.atleast_1d(strides)[i] == 1
               for i in entries if i not in new)
    return new if full else None


def expand_new_axes(graph_def: graph_pb2.GraphDef) -> graph_pb2.GraphDef:
    """Replaces each StridedSlice that only inserts axes by ExpandDims (see the module docstring)."""
    constants = _constants(graph_def)
    out = _copy_header(graph_def)
    for node in graph_def.node:
        new = None
        if node.op == "StridedSlice":
            new = _new_axes_only(node, constants.get(node.input[3].split(":")[0].lstrip("^")))
        if not new:
            out.node.add().CopyFrom(node)
            continue
        # An entry's position in the spec is its axis in the output (no ellipsis, nothing shrunk).
        source, controls = node.input[0], [i for i in node.input if i.startswith("^")]
        for k, axis in enumerate(new):
            last = k == len(new) - 1
            axis_name = _const(out, f"{node.name}/new_axis_{k}", axis, tf.int32, node.device)
            expand = out.node.add(name=node.name if last else f"{node.name}/expand_{k}", op="ExpandDims",
                                  device=node.device)
            expand.input.extend([source, axis_name, *controls])
            expand.attr["T"].CopyFrom(node.attr["T"])
            expand.attr["Tdim"].type = tf.int32.as_datatype_enum
            source = expand.name
    return out


def erfc_as_erf(graph_def: graph_pb2.GraphDef) -> graph_pb2.GraphDef:
    """Replaces each Erfc(z) by 1 - Erf(z) (see the module docstring)."""
    out = _copy_header(graph_def)
    for node in graph_def.node:
        if node.op != "Erfc":
            out.node.add().CopyFrom(node)
            continue
        dtype = tf.as_dtype(node.attr["T"].type)
        erf = out.node.add(name=f"{node.name}/erf", op="Erf", device=node.device)
        erf.input.extend(node.input)
        erf.attr["T"].CopyFrom(node.attr["T"])
        one = _const(out, f"{node.name}/one", 1.0, dtype, node.device)
        sub = out.node.add(name=node.name, op="Sub", device=node.device)
        sub.input.extend([one, erf.name])
        sub.attr["T"].CopyFrom(node.attr["T"])
    return out


def op_types(graph_def: graph_pb2.GraphDef) -> set[str]:
    """Every op type in the graph and its function library."""
    ops = {n.op for n in graph_def.node}
    for function in graph_def.library.function:
        ops.update(n.op for n in function.node_def)
    return ops
