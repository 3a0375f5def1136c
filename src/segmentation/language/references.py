"""`in_segment:` references: resolution to member models, unknown/disabled targets, cycles.

An account-scoped segment refers to the same account's segment of that key, or else the
template of that key. A template refers to templates only; for an account that overrides the
referenced template, its override's members are used. Cycles are found on the graph of all
(account, key) nodes with graphlib and reported as "acme/a -> acme/b -> acme/a".
"""

from __future__ import annotations

import dataclasses
import graphlib
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from segmentation.language.activity import InSegment, references
from segmentation.language.issues import Issues
from segmentation.language.model import TEMPLATE_ACCOUNT, Group, Node, Not, Segment
from segmentation.language.suggest import did_you_mean

NodeId = tuple[str, str]  # (account or "*", key)


def node_id(seg: Segment) -> NodeId:
    return (seg.account, seg.key)


def label(node: NodeId) -> str:
    account, key = node
    return f"_all/{key}" if account == TEMPLATE_ACCOUNT else f"{account}/{key}"


@dataclass
class Resolution:
    segments: list[Segment]  # references filled in, in dependency order
    issues: Issues = field(default_factory=Issues)
    edges: dict[NodeId, set[NodeId]] = field(default_factory=dict)


def _targets(
    seg: Segment,
    ref: InSegment,
    index: dict[NodeId, Segment],
    issues: Issues,
) -> tuple[list[Segment], tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]] | None:
    """The segments a reference reads and the (model, only, except) member sources."""
    key = ref.key
    if seg.is_template:
        target = index.get((TEMPLATE_ACCOUNT, key))
        if target is None:
            local = sorted(a for (a, k) in index if k == key and a != TEMPLATE_ACCOUNT)
            extra = f" (only account segments: {', '.join(local)})" if local else ""
            keys = sorted(k for (a, k) in index if a == TEMPLATE_ACCOUNT)
            issues.add(
                ref.loc,
                f"in_segment '{key}': a template can only refer to templates, and there is no "
                f"template '{key}'{extra}{did_you_mean(key, keys)}",
            )
            return None
        overrides = [s for (a, k), s in index.items() if k == key and a != TEMPLATE_ACCOUNT]
        if not target.enabled:
            issues.add(
                ref.loc, f"in_segment '{key}' refers to a disabled segment ({target.source_file})"
            )
            return None
        skip = tuple(sorted(s.account for s in overrides))
        sources = [(target.model_name, (), skip)]
        sources += [(s.model_name, (s.account,), ()) for s in overrides if s.enabled]
        return [target, *overrides], tuple(sources)
    target = index.get((seg.account, key)) or index.get((TEMPLATE_ACCOUNT, key))
    if target is None:
        keys = sorted({k for (a, k) in index if a in (seg.account, TEMPLATE_ACCOUNT)})
        issues.add(
            ref.loc,
            f"in_segment '{key}': unknown segment; account '{seg.account}' has no segment "
            f"'{key}' and there is no template '{key}'{did_you_mean(key, keys)}",
        )
        return None
    if not target.enabled:
        issues.add(
            ref.loc, f"in_segment '{key}' refers to a disabled segment ({target.source_file})"
        )
        return None
    only = (seg.account,) if target.is_template else ()
    return [target], ((target.model_name, only, ()),)


def _fill(node: Node | None, sources: dict[int, tuple]) -> Node | None:
    """A copy of the tree with each InSegment's sources set (keyed by id of the node)."""
    if node is None:
        return None
    if isinstance(node, InSegment):
        return dataclasses.replace(node, sources=sources.get(id(node), ()))
    if isinstance(node, Group):
        return dataclasses.replace(node, nodes=tuple(_fill(n, sources) for n in node.nodes))
    if isinstance(node, Not):
        return dataclasses.replace(node, node=_fill(node.node, sources))
    return node


def _cycles(edges: dict[NodeId, set[NodeId]]) -> list[list[NodeId]]:
    """Every independent cycle: find one, drop its nodes, look again."""
    graph = {n: set(t) for n, t in edges.items()}
    found: list[list[NodeId]] = []
    while True:
        try:
            graphlib.TopologicalSorter(graph).prepare()
            return found
        except graphlib.CycleError as exc:
            cycle = list(reversed(exc.args[1]))  # graphlib lists it against edge direction
            found.append(cycle)
            for n in cycle:
                graph.pop(n, None)
            for targets in graph.values():
                targets.difference_update(cycle)


def resolve(segments: Iterable[Segment]) -> Resolution:
    segments = list(segments)
    index = {node_id(s): s for s in segments}
    issues = Issues()
    edges: dict[NodeId, set[NodeId]] = {node_id(s): set() for s in segments}
    ref_locs: dict[tuple[NodeId, NodeId], str] = {}
    filled: dict[NodeId, Segment] = {}
    for seg in segments:
        sources: dict[int, tuple] = {}
        for tree in (seg.where, seg.exclude):
            for ref in references(tree):
                if ref.key == seg.key and not seg.is_template:
                    issues.add(ref.loc, f"in_segment cycle: {label(node_id(seg))} refers to itself")
                    continue
                if not seg.enabled:
                    # A disabled segment is not built; only its shape must be valid.
                    continue
                resolved = _targets(seg, ref, index, issues)
                if resolved is None:
                    continue
                targets, sources[id(ref)] = resolved
                for target in targets:
                    if target is seg:
                        issues.add(
                            ref.loc, f"in_segment cycle: {label(node_id(seg))} refers to itself"
                        )
                        continue
                    edges[node_id(seg)].add(node_id(target))
                    ref_locs.setdefault((node_id(seg), node_id(target)), str(ref.loc))
        filled[node_id(seg)] = dataclasses.replace(
            seg, where=_fill(seg.where, sources), exclude=_fill(seg.exclude, sources)
        )
    for cycle in _cycles(edges):
        path = " -> ".join(label(n) for n in cycle)
        steps = "; ".join(
            f"{label(a)} at {ref_locs.get((a, b), index[a].source_file)}"
            for a, b in itertools.pairwise(cycle)
        )
        first = cycle[0]
        loc = next(
            (r.loc for r in references(index[first].where) + references(index[first].exclude)),
            index[first].loc,
        )
        issues.add(loc, f"in_segment cycle: {path} (references: {steps})")
    order: list[Segment] = []
    if not issues:
        sorter = graphlib.TopologicalSorter(edges)
        order = [filled[n] for n in sorter.static_order() if n in filled]
    else:
        order = list(filled.values())
    return Resolution(order, issues, edges)
