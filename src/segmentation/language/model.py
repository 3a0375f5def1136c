"""The validated definition tree.

A small typed node hierarchy. Each node class has a `kind` (the discriminator used in the
normalised JSON and by the Jinja macro `segment_node_sql`, which dispatches to a macro named
`segment_node__<kind>`) and a `to_json()`. New node kinds (activity conditions, segment
references) subclass `Node`, add a parser to `grammar.NODE_PARSERS` and add a
`segment_node__<kind>` macro; `NodeVisitor` dispatches on `kind` the same way in Python.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from segmentation.language.catalogue import Field
from segmentation.language.issues import Loc

TEMPLATE_ACCOUNT = "*"
TEMPLATE_DIR = "_all"

T = TypeVar("T")


@dataclass(frozen=True)
class Node:
    kind: ClassVar[str] = "node"
    loc: Loc = field(compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Group(Node):
    """`all` (and) or `any` (or) over one or more nodes."""

    op: str = "all"
    nodes: tuple[Node, ...] = ()

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.op

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.op, "nodes": [n.to_json() for n in self.nodes]}


@dataclass(frozen=True)
class Not(Node):
    kind: ClassVar[str] = "not"
    node: Node | None = None

    def to_json(self) -> dict[str, Any]:
        assert self.node is not None
        return {"kind": "not", "node": self.node.to_json()}


@dataclass(frozen=True)
class Condition(Node):
    """`field op value`. `value` is normalised (see validate.py): numbers as decimal strings,
    dates as 'YYYY-MM-DD', durations as {"unit": ..., "n": ...}, lists as lists."""

    kind: ClassVar[str] = "condition"
    field: Field | None = None
    op: str = ""
    value: Any = None

    def to_json(self) -> dict[str, Any]:
        assert self.field is not None
        out: dict[str, Any] = {
            "kind": "condition",
            "field": self.field.name,
            **self.field.to_json(),
            "op": self.op,
        }
        if self.value is not None:
            out["value"] = self.value
        return out


class NodeVisitor(Generic[T]):
    """Dispatches on node.kind to `visit_<kind>`; subclasses add methods for new kinds."""

    def visit(self, node: Node) -> T:
        method = getattr(self, f"visit_{node.kind}", None)
        if method is None:
            raise NotImplementedError(f"{type(self).__name__} cannot handle '{node.kind}' nodes")
        return method(node)


@dataclass(frozen=True)
class Expect:
    min_members: int | None = None
    max_members: int | None = None
    max_change_pct: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "min_members": self.min_members,
            "max_members": self.max_members,
            "max_change_pct": self.max_change_pct,
        }


def logic_hash(logic: dict[str, Any]) -> str:
    """The definition_hash of a segment's `logic_json()` (also of one read back from where
    it was recorded, so a recorded definition proves it is the one that hash names)."""
    canonical = json.dumps(logic, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Segment:
    key: str
    account: str  # an account_id, or TEMPLATE_ACCOUNT for templates under _all/
    name: str
    description: str
    owner: str
    visibility: str
    tags: tuple[str, ...]
    enabled: bool
    expect: Expect
    where: Node
    exclude: Node | None
    source_file: str
    loc: Loc = field(compare=False, repr=False)
    account_loc: Loc | None = field(default=None, compare=False, repr=False)

    @property
    def is_template(self) -> bool:
        return self.account == TEMPLATE_ACCOUNT

    @property
    def condition(self) -> Node:
        """The whole membership rule: `where` and not `exclude`."""
        if self.exclude is None:
            return self.where
        return Group(self.loc, "all", (self.where, Not(self.exclude.loc, self.exclude)))

    @property
    def model_name(self) -> str:
        """The generated dbt model's name (and table name in segments_audit)."""
        if self.is_template:
            return f"seg__all__{self.key}"
        return f"seg__{self.account.replace('-', '_').lower()}__{self.key}"

    def logic_json(self) -> dict[str, Any]:
        """What decides membership. Its hash changes exactly when the logic changes."""
        return {"key": self.key, "account": self.account, "condition": self.condition.to_json()}

    @property
    def definition_hash(self) -> str:
        return logic_hash(self.logic_json())

    def to_json(self) -> dict[str, Any]:
        return {
            **self.logic_json(),
            "model": self.model_name,
            "name": self.name,
            "description": self.description,
            "owner": self.owner,
            "visibility": self.visibility,
            "tags": list(self.tags),
            "enabled": self.enabled,
            "expect": self.expect.to_json(),
            "definition_hash": self.definition_hash,
            "source_file": self.source_file,
        }
