"""What `segments preview` and `segments why` evaluate: one segment's condition tree as a
numbered list of nodes (pre-order, node 0 the root), the funnel's steps and a readable
label for every node.

The SQL of every node comes from the segment macros (`segment_preview_sql` calls
`segment_node_sql` on each node's JSON, the same JSON the segment model gets); this module
only numbers the nodes and describes them for people.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from segmentation.compiler import features
from segmentation.compiler.literals import jinja_string
from segmentation.language.activity import Feature, Has, InSegment
from segmentation.language.model import Condition, Group, Node, Not, Segment

# How an operator reads in a requirement ("needs >= 3"); others read as their name.
_OP_TEXT = {
    "eq": "=",
    "neq": "!=",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "in": "one of",
    "not_in": "none of",
}
_AGGREGATE_TEXT = {
    "count_distinct": "distinct {field} of ",
    "sum": "total {field} of ",
    "avg": "average {field} of ",
    "min": "earliest {field} of ",
    "max": "latest {field} of ",
}


@dataclass(frozen=True)
class PreviewNode:
    """One node of the tree. `value`: it reads a value (a field or a feature) that preview
    and why show next to its verdict."""

    id: int
    depth: int
    kind: str
    label: str  # what it reads: a field, a feature, "any of", ...
    requirement: str | None  # "needs >= 3"
    value: bool
    node_json: dict[str, Any]
    summary: str  # the whole node in one line: "orders in the last 90 days >= 3"


@dataclass(frozen=True)
class PreviewTree:
    nodes: list[PreviewNode]
    steps: list[list[int]]  # the funnel: each step is the AND of these nodes
    step_mode: str  # "cumulative" (an `all` root), "branches" (an `any` root) or "single"

    def step_labels(self) -> list[str]:
        """Each funnel step's newest condition, in one line."""
        return [self.nodes[step[-1]].summary for step in self.steps]


def preview_tree(seg: Segment) -> PreviewTree:
    nodes: list[PreviewNode] = []
    _flatten(seg.condition, 0, nodes)
    root = seg.condition
    if isinstance(root, Group) and root.op == "all":
        top = _conjuncts(root, nodes)
        return PreviewTree(nodes, [top[: i + 1] for i in range(len(top))], "cumulative")
    if isinstance(root, Group) and root.op == "any":
        return PreviewTree(nodes, [[i] for i in _children(0, nodes)], "branches")
    return PreviewTree(nodes, [[0]], "single")


def _flatten(node: Node, depth: int, out: list[PreviewNode]) -> None:
    label, requirement, has_value = describe(node)
    out.append(
        PreviewNode(
            len(out), depth, node.kind, label, requirement, has_value, node.to_json(), summary(node)
        )
    )
    for child in _child_nodes(node):
        _flatten(child, depth + 1, out)


def _child_nodes(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Group):
        return node.nodes
    if isinstance(node, Not) and node.node is not None:
        return (node.node,)
    return ()


def _children(index: int, nodes: list[PreviewNode]) -> list[int]:
    """The ids of the direct children of node `index` (pre-order: the following nodes one
    level deeper, up to the next node at its own depth)."""
    depth = nodes[index].depth
    found = []
    for node in nodes[index + 1 :]:
        if node.depth <= depth:
            break
        if node.depth == depth + 1:
            found.append(node.id)
    return found


def _conjuncts(root: Group, nodes: list[PreviewNode]) -> list[int]:
    """The top-level conditions of an `all` root, nested `all`s spelled out (a definition
    with `exclude:` is all(where, not exclude), and its `where:` is usually an `all`)."""
    out: list[int] = []

    def walk(index: int) -> None:
        for child in _children(index, nodes):
            if nodes[child].kind == "all":
                walk(child)
            else:
                out.append(child)

    walk(0)
    return out or [0]


def describe(node: Node) -> tuple[str, str | None, bool]:
    """(label, requirement, reads a value) of a node, for people."""
    if isinstance(node, Group):
        return (f"{node.op} of", None, False)
    if isinstance(node, Not):
        return ("not", None, False)
    if isinstance(node, Condition):
        assert node.field is not None
        return (node.field.name, requirement(node.op, node.value), True)
    if isinstance(node, Has):
        assert node.feature is not None
        return (feature_label(node.feature), requirement(node.op, node.value), True)
    if isinstance(node, InSegment):
        return (f"in segment {node.key}", None, False)
    return (node.kind, None, False)  # pragma: no cover - every node kind is above


def summary(node: Node) -> str:
    """A node and everything below it in one line."""
    if isinstance(node, Group):
        parts = "; ".join(summary(n) for n in node.nodes)
        return parts if len(node.nodes) == 1 else f"{node.op} of ({parts})"
    if isinstance(node, Not):
        assert node.node is not None
        return f"not ({summary(node.node)})"
    label, need, _ = describe(node)
    return f"{label} {need.removeprefix('needs ')}" if need else label


# Operators whose value goes inside the phrase.
_OP_PHRASE = {
    "within_last": "within the last {value}",
    "more_than_ago": "more than {value} ago",
    "within_next": "within the next {value}",
    "anniversary_within_next": "anniversary within the next {value}",
    "between": "between {low} and {high}",
    "not_between": "not between {low} and {high}",
}


def requirement(op: str, value: Any) -> str:
    return f"needs {op_text(op, value)}"


def op_text(op: str, value: Any) -> str:
    """'>= 3', 'more than 90 days ago', 'one of [a, b]'."""
    phrase = _OP_PHRASE.get(op)
    if phrase is not None and value is not None:
        low, high = (value_text(v) for v in value) if isinstance(value, list | tuple) else ("", "")
        return phrase.format(value=value_text(value), low=low, high=high)
    text = _OP_TEXT.get(op, op.replace("_", " "))
    return text if value is None else f"{text} {value_text(value)}"


def value_text(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"unit", "n"}:
        return f"{value['n']} {value['unit']}"
    if isinstance(value, dict) and len(value) == 1:  # a duration as written: {days: 90}
        ((unit, n),) = value.items()
        return f"{n} {unit}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    return str(value)


def feature_label(feature: Feature) -> str:
    """'total amount of orders where status = completed in the last 365 days'."""
    spec = feature.spec()
    prefix = _AGGREGATE_TEXT.get(feature.aggregate, "").format(field=feature.field)
    text = prefix + feature.object
    if spec["filter"]:
        text += f" where {filter_text(spec['filter'])}"
    window = spec["window"] or {}
    if "last_days" in window:
        text += f" in the last {window['last_days']} days"
    elif "between" in window:
        low, high = window["between"]
        text += f" between {low} and {high}"
    return text


def filter_text(node: dict[str, Any]) -> str:
    kind = node.get("kind")
    if kind in ("all", "any"):
        joiner = " and " if kind == "all" else " or "
        parts = [filter_text(n) for n in node["nodes"]]
        return parts[0] if len(parts) == 1 else "(" + joiner.join(parts) + ")"
    if kind == "not":
        return f"not {filter_text(node['node'])}"
    return f"{node.get('field')} {op_text(str(node.get('op', '')), node.get('value'))}"


def segment_features(seg: Segment) -> dict[str, dict[str, Any]]:
    """The contact_features meta of the features this segment reads, per object."""
    found = features.collect_features([seg.condition])
    return {obj: features.model_meta(obj, feats) for obj, feats in found.items() if feats}


def preview_spec(
    seg: Segment,
    payload: dict[str, Any],
    account: str,
    tree: PreviewTree,
    mode: str,
    limit: int = 20,
    contact_id: str | None = None,
    as_of: str | None = None,
    built_features: list[str] | None = None,
) -> dict[str, Any]:
    """The argument of the `segment_preview_sql` macro. `payload`: the segment model's
    payload (render.RenderResult.payloads), so preview evaluates exactly what the model
    does. `built_features`: objects whose built feature model holds what this preview
    needs (steps.preview decides)."""
    return {
        "definition": payload,
        "account": account,
        "nodes": [{"id": n.id, "node": n.node_json, "value": n.value} for n in tree.nodes],
        "steps": tree.steps,
        # computed for this preview, unless the built feature model can be read
        "features": {
            obj: meta
            for obj, meta in segment_features(seg).items()
            if obj not in (built_features or [])
        },
        "built_features": sorted(built_features or []),
        "mode": mode,
        "limit": int(limit),
        "contact_id": contact_id,
        "as_of": as_of,
    }


def preview_inline(spec: dict[str, Any]) -> str:
    """The inline dbt model (`dbt compile --inline`) that renders the preview SQL. Every
    value is inside one Jinja string literal (jinja_string), so nothing in the spec, from
    YAML or the command line, can change the template."""
    # round-trip through JSON first: tuples and the like become plain lists
    return f"{{{{ segment_preview_sql(fromjson({jinja_string(json.loads(json.dumps(spec)))})) }}}}"
