"""`has:` conditions on a contact's related records, and `in_segment:` references.

A `has:` condition names an activity object (deals, tickets, ...), an optional condition tree
over that object's own fields (the same operators as contact fields, parsed by the same
`Parser` against the object's own catalogue), an optional time window and one aggregate
compared with an operator. It never becomes SQL on its own: the (object, filter, window,
aggregate) part is a `Feature`, one column of a per-contact feature model computed in one
pass per activity table (features.py); the segment only compares that column.

grammar.py adds the `has` and `in_segment` parsers of this module to the validator's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from segmentation.language import validate as _validate
from segmentation.language.catalogue import Catalogue, Entity, Field, FieldType, UnknownFieldError
from segmentation.language.loader import MarkedDict
from segmentation.language.model import Group, Node, Not
from segmentation.language.suggest import OPERATOR_ALIASES, did_you_mean
from segmentation.language.validate import KEY_PATTERN, Parser, type_name

S, N, D, T, B = (
    FieldType.STRING,
    FieldType.NUMBER,
    FieldType.DATE,
    FieldType.TIMESTAMP,
    FieldType.BOOLEAN,
)


@dataclass(frozen=True)
class ActivityObject:
    """One kind of related record: its staging model, fields and the field windows use."""

    name: str
    entity: Entity
    time_field: str
    description: str
    # Rows reach a contact through the contact_companies link table, not their own contact_id.
    via_link: bool = False

    @property
    def model(self) -> str:
        return self.entity.model

    @property
    def fields(self) -> dict[str, Field]:
        return self.entity.fields


def _object(
    name: str,
    model: str,
    time_field: str,
    description: str,
    columns: dict[str, tuple[FieldType, str]],
    via_link: bool = False,
) -> ActivityObject:
    return ActivityObject(name, Entity(name, model, "", columns), time_field, description, via_link)


OBJECTS: dict[str, ActivityObject] = {
    o.name: o
    for o in (
        _object(
            "deals",
            "stg_crm__deals",
            "created_at",
            "deals of the contact (deals.contact_id)",
            {
                "deal_id": (S, "deal id"),
                "company_id": (S, "company of the deal"),
                "pipeline": (S, "pipeline"),
                "stage": (S, "stage, lower snake_case"),
                "status": (S, "open | won | lost"),
                "amount": (N, "amount (unset amounts are skipped by sum/avg/min/max)"),
                "currency": (S, "currency code"),
                "created_at": (T, "when the deal was created (the window field)"),
                "updated_at": (T, "last update"),
                "closed_at": (T, "when it was won or lost"),
                "expected_close_date": (D, "expected close date"),
                "owner_user_id": (S, "owning user"),
            },
        ),
        _object(
            "tickets",
            "stg_crm__tickets",
            "created_at",
            "support tickets of the contact",
            {
                "ticket_id": (S, "ticket id"),
                "status": (S, "open | pending | resolved | closed"),
                "priority": (S, "priority, lower snake_case"),
                "category": (S, "category, lower snake_case"),
                "channel": (S, "channel, lower snake_case"),
                "created_at": (T, "when the ticket was opened (the window field)"),
                "updated_at": (T, "last update"),
                "resolved_at": (T, "when it was resolved"),
            },
        ),
        _object(
            "conversations",
            "stg_crm__conversations",
            "started_at",
            "conversations with the contact",
            {
                "conversation_id": (S, "conversation id"),
                "channel": (S, "whatsapp | email | sms | livechat | instagram | facebook"),
                "status": (S, "status, lower snake_case"),
                "started_at": (T, "when it started (the window field)"),
                "last_message_at": (T, "last message"),
                "message_count": (N, "messages in the conversation"),
                "agent_user_id": (S, "agent"),
            },
        ),
        _object(
            "campaign_events",
            "stg_crm__campaign_events",
            "occurred_at",
            "campaign events of the contact",
            {
                "event_id": (S, "event id"),
                "campaign_id": (S, "campaign"),
                "event_type": (S, "sent | delivered | read | replied | clicked | failed | ..."),
                "occurred_at": (T, "when it happened (the window field)"),
            },
        ),
        _object(
            "orders",
            "stg_crm__orders",
            "ordered_at",
            "orders of the contact",
            {
                "order_id": (S, "order id"),
                "amount": (N, "order amount (unset amounts are skipped by sum/avg/min/max)"),
                "currency": (S, "currency code"),
                "status": (S, "completed | refunded | cancelled"),
                "ordered_at": (T, "when it was ordered (the window field)"),
            },
        ),
        _object(
            "companies",
            "stg_crm__companies",
            "created_at",
            "companies linked to the contact through contact_companies (any link)",
            {
                "company_id": (S, "company id"),
                "company_name": (S, "name"),
                "industry": (S, "industry, lower snake_case"),
                "employee_count": (N, "employees"),
                "annual_revenue": (N, "annual revenue"),
                "city": (S, "city, initcap"),
                "country": (S, "ISO 3166-1 alpha-2 code"),
                "created_at": (T, "when the company was created (the window field)"),
                "updated_at": (T, "last update"),
                "is_primary": (B, "the link marks the contact's primary company"),
            },
            via_link=True,
        ),
    )
}

AGGREGATES = ("count", "count_distinct", "sum", "avg", "min", "max")
# Over no rows these are 0; avg, min and max are unset (NULL). See docs/cookbook.md.
ZERO_WHEN_EMPTY = frozenset({"count", "count_distinct", "sum"})
HAS_KEYS = ("object", "where", "within", *AGGREGATES)
WINDOW_MAX_DAYS = 36600


class ObjectCatalogue(Catalogue):
    """An activity object's own fields, for the `where:` under `has:` (no custom.* fields)."""

    def is_custom(self, name: str) -> bool:
        return False

    def lookup(self, name: str) -> Field:
        found = self.fields.get(name)
        if found is not None:
            return found
        entity = self.entities[0]
        hint = did_you_mean(name, self.names())
        raise UnknownFieldError(
            f"unknown field '{name}' for {entity.name}{hint}; "
            f"{entity.name} fields: {', '.join(self.names())}"
        )


def object_catalogue(name: str) -> ObjectCatalogue:
    entity = OBJECTS[name].entity
    return ObjectCatalogue(entities=(entity,), custom_entity=entity)


@dataclass(frozen=True)
class Feature:
    """One per-contact aggregate: computed once, shared by every segment that needs it."""

    object: str
    aggregate: str
    field: str | None
    filter: str | None  # canonical JSON of the `where:` tree over the object's fields
    window: tuple[str, Any] | None  # ("last_days", N) | ("between", (d1, d2))

    def spec(self) -> dict[str, Any]:
        window = None
        if self.window is not None:
            kind, value = self.window
            window = {kind: list(value) if isinstance(value, tuple) else value}
        return {
            "object": self.object,
            "aggregate": self.aggregate,
            "field": self.field,
            "filter": json.loads(self.filter) if self.filter else None,
            "window": window,
        }

    @property
    def id(self) -> str:
        """Equal specs (wherever they are written) share one column."""
        canonical = json.dumps(self.spec(), sort_keys=True, separators=(",", ":"))
        return "f_" + hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @property
    def field_type(self) -> FieldType | None:
        return OBJECTS[self.object].fields[self.field].type if self.field else None

    @property
    def result_type(self) -> FieldType:
        if self.aggregate in ("count", "count_distinct", "sum", "avg"):
            return FieldType.NUMBER
        ftype = self.field_type
        assert ftype is not None
        # min/max of a timestamp is the account-local date of that moment.
        return FieldType.DATE if ftype is FieldType.TIMESTAMP else ftype


@dataclass(frozen=True)
class Has(Node):
    """A validated `has:`: a feature and the comparison its value must pass."""

    kind: ClassVar[str] = "has"
    feature: Feature | None = None
    where: Node | None = None
    op: str = "gte"
    value: Any = "1"

    def to_json(self) -> dict[str, Any]:
        f = self.feature
        assert f is not None
        out: dict[str, Any] = {
            "kind": "has",
            "object": f.object,
            "feature": f.id,
            "aggregate": f.aggregate,
            "zero_when_empty": f.aggregate in ZERO_WHEN_EMPTY,
            "op": self.op,
            "type": str(f.result_type),
        }
        if self.value is not None:
            out["value"] = self.value
        return out


@dataclass(frozen=True)
class InSegment(Node):
    """Membership of another segment of the same account; `sources` is filled by
    references.resolve() with the models that hold that segment's members."""

    kind: ClassVar[str] = "in_segment"
    key: str = ""
    sources: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "in_segment", "key": self.key}
        if self.sources:
            out["sources"] = [
                {"model": m, "only_accounts": list(only), "except_accounts": list(skip)}
                for m, only, skip in self.sources
            ]
        return out


def walk(node: Node | None) -> list[Node]:
    """The node and every node below it (has: filters are not descended into)."""
    if node is None:
        return []
    out = [node]
    if isinstance(node, Group):
        for child in node.nodes:
            out += walk(child)
    elif isinstance(node, Not):
        out += walk(node.node)
    return out


# --- parsing ---------------------------------------------------------------------------------


def parse_in_segment(parser: Parser, data: MarkedDict) -> Node | None:
    if not parser.check_keys(data, ("in_segment",), (), "an in_segment condition"):
        return None
    value = data["in_segment"]
    loc = data.value_loc("in_segment")
    if not isinstance(value, str) or not KEY_PATTERN.fullmatch(value):
        parser.error(
            loc, f"in_segment needs a segment key (snake_case), got {type_name(value)} {value!r}"
        )
        return None
    return InSegment(loc, value)


def parse_has(parser: Parser, data: MarkedDict) -> Node | None:
    if not parser.check_keys(data, ("has",), (), "a has condition"):
        return None
    body = data["has"]
    loc = data.value_loc("has")
    if not isinstance(body, MarkedDict):
        parser.error(loc, f"has: must be a mapping with 'object', got {type_name(body)}")
        return None
    keys_ok = parser.check_keys(body, HAS_KEYS, ("object",), "has:")
    if "object" not in body:
        return None
    name = body["object"]
    if name not in OBJECTS:
        hint = did_you_mean(str(name), OBJECTS)
        parser.error(
            body.value_loc("object"),
            f"unknown object '{name}'{hint}; has: works on {', '.join(OBJECTS)}",
        )
        return None
    obj = OBJECTS[name]
    where = _where(parser, body, obj)
    window = _window(parser, body, obj) if "within" in body else None
    aggregate = _aggregate(parser, body, obj)
    if not keys_ok or where is _INVALID or window is _INVALID or aggregate is None:
        return None
    kind, agg_field, op, value = aggregate
    filter_json = (
        json.dumps(where.to_json(), sort_keys=True, separators=(",", ":")) if where else None
    )
    feature = Feature(obj.name, kind, agg_field, filter_json, window)
    return Has(data.loc, feature, where, op, value)


_INVALID: Any = object()


def _where(parser: Parser, body: MarkedDict, obj: ActivityObject) -> Any:
    if "where" not in body:
        return None
    inner = Parser(
        parser.file,
        parser.issues,
        object_catalogue(obj.name),
        parser.regex_check,
        parser.node_parsers,
    )
    loc = body.value_loc("where")
    value = body["where"]
    what = f"has: {obj.name} where"
    node = inner.root(body, "where") if isinstance(value, list) else inner.node(value, loc, what)
    if node is None:
        return _INVALID
    for child in walk(node):
        if isinstance(child, (Has, InSegment)):
            parser.error(
                child.loc,
                f"'{child.kind}' cannot be used inside has: {obj.name} where: (it filters "
                f"{obj.name} rows by their own fields)",
            )
            return _INVALID
    return node


def _window(parser: Parser, body: MarkedDict, obj: ActivityObject) -> Any:
    value = body["within"]
    loc = body.value_loc("within")
    usage = (
        f"within: must be {{last_days: N}} or {{between: [from, to]}} "
        f"(a window on {obj.name}.{obj.time_field})"
    )
    if not isinstance(value, MarkedDict) or len(value) != 1:
        parser.error(loc, usage)
        return _INVALID
    kind, arg = next(iter(value.items()))
    arg_loc = value.value_loc(kind)
    if kind == "last_days":
        if isinstance(arg, bool) or not isinstance(arg, int) or not 0 < arg <= WINDOW_MAX_DAYS:
            parser.error(
                arg_loc,
                f"within.last_days must be a whole number from 1 to {WINDOW_MAX_DAYS}, got {arg!r}",
            )
            return _INVALID
        return ("last_days", arg)
    if kind == "between":
        if not isinstance(arg, list) or len(arg) != 2:
            parser.error(arg_loc, "within.between must be two dates [from, to]")
            return _INVALID
        days = [parser.date(v, arg_loc, "a within.between date") for v in arg]
        if None in days:
            return _INVALID
        if days[0] > days[1]:
            parser.error(arg_loc, f"within.between: {days[0]} is after {days[1]}")
            return _INVALID
        return ("between", (days[0], days[1]))
    parser.error(value.key_loc(kind), f"unknown window '{kind}'; {usage}")
    return _INVALID


def _aggregate(
    parser: Parser, body: MarkedDict, obj: ActivityObject
) -> tuple[str, str | None, str, Any] | None:
    kinds = [k for k in AGGREGATES if k in body]
    if not kinds:
        return ("count", None, "gte", "1")  # the default: at least one row
    if len(kinds) > 1:
        parser.error(
            body.key_loc(kinds[1]),
            f"has: takes one aggregate, found {' and '.join(kinds)}; "
            "combine two has: conditions in an 'all' instead",
        )
        return None
    kind = kinds[0]
    spec = body[kind]
    loc = body.value_loc(kind)
    example = "{gte: 3}" if kind == "count" else "{field: <field>, gte: 1}"
    if not isinstance(spec, MarkedDict):
        parser.error(loc, f"{kind}: must be a mapping like {example}, got {type_name(spec)}")
        return None
    agg_field: Field | None = None
    if kind == "count":
        if "field" in spec:
            parser.error(spec.key_loc("field"), "count: counts rows and takes no 'field'")
            return None
    else:
        if "field" not in spec:
            parser.error(spec.loc, f"{kind}: needs 'field', a field of {obj.name}")
            return None
        try:
            agg_field = object_catalogue(obj.name).lookup(str(spec["field"]))
        except LookupError as exc:
            parser.error(spec.value_loc("field"), getattr(exc, "message", str(exc)))
            return None
        if kind in ("sum", "avg") and agg_field.type is not FieldType.NUMBER:
            parser.error(
                spec.value_loc("field"),
                f"{kind}: needs a number field; '{agg_field.name}' is a {agg_field.type}",
            )
            return None
        if kind in ("min", "max") and agg_field.type is FieldType.BOOLEAN:
            parser.error(spec.value_loc("field"), f"{kind}: does not apply to boolean fields")
            return None
    feature = Feature(obj.name, kind, agg_field.name if agg_field else None, None, None)
    result = feature.result_type
    label = f"{kind}({agg_field.name})" if agg_field else kind
    comparison = MarkedDict(spec.loc)
    rest = [k for k in spec if k != "field"]
    if "op" in spec:
        for k in rest:
            if k not in ("op", "value"):
                parser.error(spec.key_loc(k), f"unexpected key '{k}' beside op: in {kind}:")
                return None
            comparison[k] = spec[k]
            comparison.key_locs[k] = spec.key_loc(k)
            comparison.value_locs[k] = spec.value_loc(k)
    else:
        if len(rest) != 1:
            parser.error(
                spec.loc,
                f"{kind}: needs exactly one comparison like {example}, "
                f"found {', '.join(rest) or 'none'}",
            )
            return None
        op_name = rest[0]
        comparison["op"] = op_name
        comparison.key_locs["op"] = comparison.value_locs["op"] = spec.key_loc(op_name)
        comparison["value"] = spec[op_name]
        comparison.key_locs["value"] = spec.key_loc(op_name)
        comparison.value_locs["value"] = spec.value_loc(op_name)
    op_name = comparison.get("op")
    op_loc = comparison.value_loc("op")
    op = _validate.OPERATORS.get(op_name) if isinstance(op_name, str) else None
    if op is None or result not in op.types:
        allowed = _validate.operators_for(result)
        hint = did_you_mean(str(op_name), allowed, OPERATOR_ALIASES)
        parser.error(
            op_loc,
            f"operator '{op_name}' does not apply to {kind} of {obj.name} (a {result}){hint}; "
            f"use one of {', '.join(allowed)}",
        )
        return None
    synthetic = Field(label, obj.name, "feature", result)
    value = parser._value(comparison, synthetic, op)
    if value is _validate._INVALID:
        return None
    whole = kind in ("count", "count_distinct") and op.value.value == "scalar"
    if whole and value is not None and "." in str(value):
        parser.error(comparison.value_loc("value"), f"{kind} compares with whole numbers")
        return None
    return (kind, agg_field.name if agg_field else None, op.name, value)


def uses_activity(node: Node | None) -> bool:
    """Does a condition tree contain has: (activity conditions need ultimate or 360)?"""
    return any(isinstance(n, Has) for n in walk(node))


def references(node: Node | None) -> list[InSegment]:
    return [n for n in walk(node) if isinstance(n, InSegment)]
