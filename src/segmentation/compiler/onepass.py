"""One-pass evaluation: every segment of a scope computed in one scan of its contacts.

A *pass* is one dbt model (`seg_pass__all` for the templates, `seg_pass__<account>` for an
account's own definitions) producing one wide row per contact: a boolean column per segment,
named like the segment's model (`seg__all__churn_risk`). segment_memberships unpivots the
passes once; each `seg__*` model is a thin view over its pass column, so preview, explain
and `dbt ls` still see one model per segment.

`in_segment` reads the referenced segment's computed boolean, never a re-evaluation. The
pass is evaluated in layers (macros/segments/segment_pass.sql):

- the base select joins the contacts to everything the scope reads and computes every
  *atom*: each segment's maximal subtrees without references (a segment without any is
  one atom, its own column);
- layer k (k >= 1) computes the segments whose references all point at columns of earlier
  layers (or of the template pass, joined in), as boolean algebra over those columns.

References across scopes: an account's definition may refer to a template (read from the
template pass, joined in); a template refers to templates, and for an account that
overrides the referenced template, to that account's override. The template pass does not
read account passes (that could make a dbt cycle: acme -> all -> acme); it evaluates such
overrides itself as extra, account-restricted columns that it does not output.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from segmentation.language.model import TEMPLATE_ACCOUNT, Segment

PASS_PREFIX = "seg_pass__"
TEMPLATE_PASS = f"{PASS_PREFIX}all"
PASS_TAG = "segment_pass"
_MAX_NAME = 63  # PostgreSQL identifiers


def pass_model(scope: str) -> str:
    """The pass model of a scope: '*' (templates) or an account id."""
    if scope == TEMPLATE_ACCOUNT:
        return TEMPLATE_PASS
    name = PASS_PREFIX + scope.replace("-", "_").lower()
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(scope.encode()).hexdigest()[:8]
    return f"{name[: _MAX_NAME - 9]}_{digest}"


def scope_of(seg: Segment) -> str:
    return TEMPLATE_ACCOUNT if seg.is_template else seg.account


@dataclass
class Column:
    """One segment evaluated in a pass."""

    seg: Segment
    output: bool  # unpivoted into membership by this pass (False: a helper column)
    level: int = 0
    atoms: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (name, tree)
    tree: dict[str, Any] | None = None  # levels >= 1: over atoms and earlier columns


@dataclass
class Pass:
    scope: str
    columns: list[Column]
    imports: list[str]  # template-pass columns an account pass reads

    @property
    def model(self) -> str:
        return pass_model(self.scope)


def _refs(tree: dict[str, Any]) -> list[dict[str, Any]]:
    if tree.get("kind") == "in_segment":
        return [tree]
    out = []
    for child in tree.get("nodes", []):
        out += _refs(child)
    if "node" in tree:
        out += _refs(tree["node"])
    return out


def _gated(seg: Segment, flag: int | None) -> dict[str, Any]:
    """The segment's condition restricted to where it applies in its pass: a template to
    the accounts int_segment_scopes gives it (flag), an account's own segment in the
    template pass to that account."""
    tree = seg.condition.to_json()
    if flag is not None:
        return {"kind": "all", "nodes": [{"kind": "pass_flag", "index": flag}, tree]}
    return tree


def _split(tree: dict[str, Any], atom: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
    """The tree with each maximal subtree without references replaced by an atom column and
    each reference by a pass_ref over the columns of its sources."""
    if not _refs(tree):
        return {"kind": "pass_column", "column": atom(tree)}
    kind = tree["kind"]
    if kind == "in_segment":
        return {
            "kind": "pass_ref",
            "key": tree["key"],
            "sources": [
                {
                    "column": s["model"],
                    "only_accounts": s["only_accounts"],
                    "except_accounts": s["except_accounts"],
                }
                for s in tree["sources"]
            ],
        }
    if kind == "not":
        return {"kind": "not", "node": _split(tree["node"], atom)}
    return {"kind": kind, "nodes": [_split(n, atom) for n in tree["nodes"]]}


def _layer(columns: list[Column], available: set[str]) -> None:
    """Levels, atoms and trees of the columns of one pass. `available`: columns the base
    select reads from elsewhere (the template pass), usable at any level."""
    by_model = {c.seg.model_name: c for c in columns}
    level: dict[str, int] = {}

    def level_of(model: str) -> int:
        if model in level:
            return level[model]
        col = by_model[model]
        deps = [s["model"] for r in _refs(col.seg.condition.to_json()) for s in r["sources"]]
        inner = [level_of(d) for d in deps if d in by_model]
        missing = [d for d in deps if d not in by_model and d not in available]
        if missing:  # the compiler builds passes so that this cannot happen
            raise ValueError(f"{model}: in_segment sources {missing} are not in its pass")
        level[model] = 0 if not deps else 1 + max(inner, default=0)
        return level[model]

    for col in columns:
        col.level = level_of(col.seg.model_name)


def build_passes(segments: list[Segment]) -> list[Pass]:
    """The passes of a resolved, enabled set of segments (in_segment sources filled)."""
    enabled = [s for s in segments if s.enabled]
    by_model = {s.model_name: s for s in enabled}
    templates = sorted((s for s in enabled if s.is_template), key=lambda s: s.key)
    # the index of each template's flag column in the template pass (pass_payload's
    # template_scopes, in the same order)
    flags = {s.key: i for i, s in enumerate(templates)}
    passes: list[Pass] = []

    def deps(seg: Segment) -> list[Segment]:
        found = [s["model"] for r in _refs(seg.condition.to_json()) for s in r["sources"]]
        return [by_model[m] for m in dict.fromkeys(found) if m in by_model]

    if templates:
        # account overrides that templates read, and what those read in turn
        extra: dict[str, Segment] = {}
        todo = [d for t in templates for d in deps(t) if not d.is_template]
        while todo:
            seg = todo.pop()
            if seg.model_name in extra:
                continue
            extra[seg.model_name] = seg
            todo += [d for d in deps(seg) if not d.is_template]
        cols = [Column(t, True) for t in templates]
        cols += [Column(s, False) for s in sorted(extra.values(), key=lambda s: s.model_name)]
        passes.append(Pass(TEMPLATE_ACCOUNT, cols, []))
    for account in sorted({s.account for s in enabled if not s.is_template}):
        own = sorted(
            (s for s in enabled if s.account == account and not s.is_template),
            key=lambda s: s.key,
        )
        imports = sorted({d.model_name for s in own for d in deps(s) if d.is_template})
        passes.append(Pass(account, [Column(s, True) for s in own], imports))

    for p in passes:
        _layer(p.columns, set(p.imports))
        counter = iter(range(1_000_000))
        for col in p.columns:
            if p.scope == TEMPLATE_ACCOUNT and col.seg.is_template:
                gated = _gated(col.seg, flags[col.seg.key])
            elif p.scope == TEMPLATE_ACCOUNT:
                account = {"kind": "pass_account", "account": col.seg.account}
                gated = {"kind": "all", "nodes": [account, col.seg.condition.to_json()]}
            else:
                gated = col.seg.condition.to_json()
            if col.level == 0:
                col.atoms = [(col.seg.model_name, gated)]
                continue

            def atom(tree: dict[str, Any], col: Column = col, counter: Any = counter) -> str:
                name = f"atom__{next(counter)}"
                col.atoms.append((name, tree))
                return name

            col.tree = _split(gated, atom)
    return passes


def pass_payload(
    p: Pass,
    objects: Callable[[Segment], list[str]],
    entities: Callable[[Segment], list[str]],
) -> dict[str, Any]:
    """What the segment_pass macro renders: the scope, its inputs, the atoms of the base
    select and the layers, all from validated definitions."""
    levels = max((c.level for c in p.columns), default=0)
    template_keys = sorted(c.seg.key for c in p.columns if c.seg.is_template and c.output)
    return {
        "scope": p.scope,
        "model": p.model,
        "template_scopes": template_keys if p.scope == TEMPLATE_ACCOUNT else [],
        "entities": sorted({e for c in p.columns for e in entities(c.seg)}),
        "activity_objects": sorted({o for c in p.columns for o in objects(c.seg)}),
        "imports": [{"model": TEMPLATE_PASS, "column": m} for m in p.imports],
        "atoms": [{"column": name, "node": tree} for c in p.columns for name, tree in c.atoms],
        "layers": [
            [{"column": c.seg.model_name, "node": c.tree} for c in p.columns if c.level == k]
            for k in range(1, levels + 1)
        ],
        "outputs": [
            {
                "column": c.seg.model_name,
                "key": c.seg.key,
                "definition_hash": c.seg.definition_hash,
            }
            for c in p.columns
            if c.output
        ],
    }
