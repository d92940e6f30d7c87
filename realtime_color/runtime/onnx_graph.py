"""The branch-free network inside a hint-capable ONNX graph, for frames without hints (no torch).

A hint-capable export (``export.export_onnx``) computes the network's own ab, then the hint branch
(nodes named ``/hints/...``) blends the hints into it. ONNX Runtime runs every node of a graph on
every call, whatever outputs are asked for, so feeding an all-zero mask still pays for the branch
(the spread over the 1/2-resolution grid and its 3x3 gate). Without hints the branch's output is
the network's ab exactly (``model/hint_branch.py``), so frames without hints can run the graph cut
just before the branch: the nodes that the network's own ab depends on, and nothing else, with
the same weights, the same int8 quantization and the same file metadata. The cut is made when the
file is loaded, so the shipped files and their recorded checkpoint sha256 do not change.
"""

from __future__ import annotations

import onnx
from onnx import helper

BRANCH_SCOPE = "/hints/"  # the exporter names the branch's nodes after the module attribute ``hints``
_PASS_THROUGH = ("Cast", "Identity")  # between the branch's last node and the graph output


def _producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in graph.node for out in node.output}


def _branch_end(model: onnx.ModelProto, output: str, hints_input: str) -> tuple[onnx.NodeProto, str] | None:
    """The hint branch's last node on the way to ``output`` and its one input made outside the
    branch, the network's own ab (None when ``output`` does not come out of a hint branch)."""
    graph = model.graph
    prod = _producers(graph)
    node = prod.get(output)
    while node is not None and node.op_type in _PASS_THROUGH and BRANCH_SCOPE not in node.name:
        node = prod.get(node.input[0])  # the fp32 Cast after an fp16 graph, kept in the cut
    if node is None or BRANCH_SCOPE not in node.name:
        return None
    # The branch's last node is ``ab + gate * (target - ab)``: its one input made outside the branch.
    outside = [i for i in node.input if i in prod and BRANCH_SCOPE not in prod[i].name]
    if len(outside) != 1 or hints_input in _ancestors(graph, outside[0], prod)[1]:
        return None
    return node, outside[0]


def _ancestors(graph: onnx.GraphProto, tensor: str, prod: dict[str, onnx.NodeProto]) -> tuple[set[int], set[str]]:
    """Indices of the nodes ``tensor`` depends on, and every tensor name on the way."""
    index = {out: k for k, node in enumerate(graph.node) for out in node.output}
    nodes, seen, todo = set(), {tensor}, [tensor]
    while todo:
        k = index.get(todo.pop())
        if k is None or k in nodes:
            continue
        nodes.add(k)
        for name in graph.node[k].input:
            if name and name not in seen:
                seen.add(name)
                todo.append(name)
    return nodes, seen


def branch_free(model: onnx.ModelProto, output: str = "ab", hints_input: str = "hints") -> onnx.ModelProto | None:
    """``model`` cut before its hint branch: inputs without ``hints_input``, the one output
    ``output`` (the network's own ab), only the nodes and weights that output needs; opset and
    metadata_props kept. None when the graph has no hint branch to cut."""
    end = _branch_end(model, output, hints_input)
    if end is None:
        return None
    last, source = end
    # The branch's last node becomes an Identity of the network's ab; the rest of the branch,
    # which nothing on the way to ``output`` needs any more, is dropped.
    bypass = helper.make_node("Identity", [source], list(last.output), name="/branch_free/Identity")
    graph = onnx.GraphProto()
    graph.CopyFrom(model.graph)
    del graph.node[:]
    graph.node.extend(bypass if n.name == last.name else n for n in model.graph.node)
    nodes, used = _ancestors(graph, output, _producers(graph))
    cut = onnx.ModelProto()
    cut.CopyFrom(model)
    g = cut.graph
    kept = [n for k, n in enumerate(graph.node) if k in nodes]
    del g.node[:]
    g.node.extend(kept)
    inits = [i for i in graph.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(inits)
    inputs = [i for i in graph.input if i.name in used]
    del g.input[:]
    g.input.extend(inputs)
    outputs = [o for o in graph.output if o.name == output]
    del g.output[:]
    g.output.extend(outputs)
    del g.value_info[:]  # shape hints of removed tensors; ONNX Runtime infers the rest
    onnx.checker.check_model(cut)
    return cut
