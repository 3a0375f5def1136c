"""200 generated segment templates for `make bench` and the one-pass equivalence test.

Deterministic (a seeded `random.Random`, no clock, no set ordering): the same (n, seed) gives
byte-identical files on every machine, so a benchmark run and a test see the same
definitions. They are templates (`segment_defs/_all/bench/bench_NNN.yml`, `account: "*"`),
built once for every account, and they mix what the language can say:

- basic attributes of every type (string, number, date, timestamp, boolean, array), the
  primary company, RFM scores, clusters and custom fields;
- every `has:` object with every aggregate that applies to it (count, count_distinct, sum,
  avg, min, max), with and without a `where:` filter;
- windows of 7, 30, 90 and 365 days (and none, and a fixed `between`);
- nesting (all/any/not groups three levels deep), `exclude:`, and `in_segment:` references
  to earlier generated definitions only, so the references never form a cycle.

Every generated file passes `segments validate` (tests/unit/test_bench_defs.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

BENCH_DIR = "_all/bench"
PREFIX = "bench_"
WINDOWS: tuple[int | None, ...] = (7, 30, 90, 365, None)

Cond = dict[str, Any]


def _c(field: str, op: str, value: Any = None) -> Cond:
    out: Cond = {"field": field, "op": op}
    if value is not None:
        out["value"] = value
    return out


# Basic attribute conditions: each a function of the generator, so values vary with the seed
# while every operator family keeps appearing. Values are those staging produces from
# `segments demo-data` (lower snake_case picklists, initcap cities, ISO countries).
_BASIC: tuple[Callable[[random.Random], Cond], ...] = (
    lambda r: _c("lifecycle_stage", "eq", r.choice(["customer", "lead", "subscriber"])),
    lambda r: _c(
        "lifecycle_stage", "in", r.sample(["lead", "customer", "evangelist", "opportunity"], 2)
    ),
    lambda r: _c("lifecycle_stage", "neq", "customer"),
    lambda r: _c("lifecycle_stage", "not_in", ["subscriber", "opportunity"]),
    lambda r: _c("loyalty_tier", "in", r.sample(["bronze", "silver", "gold", "platinum"], 2)),
    lambda r: _c("loyalty_points", "gte", r.choice([500, 1000, 2500, 5000])),
    lambda r: _c("loyalty_points", "between", [r.choice([0, 100, 1000]), r.choice([3000, 8000])]),
    lambda r: _c("loyalty_points", "not_between", [1000, r.choice([2000, 4000])]),
    lambda r: _c("loyalty_points", "lt", r.choice([200, 750])),
    lambda r: _c("city", "eq", r.choice(["Jakarta Selatan", "Bandung", "Bekasi"])),
    lambda r: _c("city", "starts_with", "Jakarta"),
    lambda r: _c("city", "in", r.sample(["Bandung", "Depok", "Bogor", "Jakarta Barat"], 2)),
    lambda r: _c("province", "ieq", r.choice(["dki jakarta", "JAWA BARAT"])),
    lambda r: _c("country", "eq", "ID"),
    lambda r: _c("email", "ends_with", r.choice(["@gmail.com", "@yahoo.co.id"])),
    lambda r: _c("email", "contains", "yahoo"),
    lambda r: _c("email", "not_contains", "gmail"),
    lambda r: _c("email", "is_set"),
    lambda r: _c("phone", "is_set"),
    lambda r: _c("phone", "is_not_set"),
    lambda r: _c("phone", "starts_with", "+6281"),
    lambda r: _c("full_name", "matches", r.choice(["^[A-M]", "a$", "^(Budi|Siti) "])),
    lambda r: _c("full_name", "icontains", r.choice(["putri", "wati", "ANTO"])),
    lambda r: _c("job_title", "icontains", r.choice(["manager", "owner", "staff"])),
    lambda r: _c("gender", "eq", r.choice(["male", "female"])),
    lambda r: _c("lead_source", "in", ["referral", "instagram", "organic_search"]),
    lambda r: _c(r.choice(["consent_whatsapp", "consent_email", "consent_sms"]), "is_true"),
    lambda r: _c(r.choice(["consent_email", "consent_sms"]), "is_false"),
    lambda r: _c("tags", "contains_any", r.sample(["vip", "newsletter", "wholesale"], 2)),
    lambda r: _c("tags", "contains_all", ["newsletter", "vip"]),
    lambda r: _c("tags", "contains_none", ["do_not_contact"]),
    lambda r: _c("created_at", "within_last", {"days": r.choice([7, 30, 90, 365])}),
    lambda r: _c("created_at", "more_than_ago", {r.choice(["months", "weeks"]): 6}),
    lambda r: _c("created_at", "in_calendar", r.choice(["this_year", "last_year", "this_month"])),
    lambda r: _c("created_at", "before", r.choice(["2024-01-01", "2025-06-30"])),
    lambda r: _c("created_at", "between", ["2023-01-01", r.choice(["2024-12-31", "2025-12-31"])]),
    lambda r: _c("updated_at", "within_last", {"weeks": r.choice([1, 4, 12])}),
    lambda r: _c("consent_updated_at", "is_not_set"),
    lambda r: _c("date_of_birth", "anniversary_within_next", {"days": r.choice([7, 30])}),
    lambda r: _c("date_of_birth", "before", "1990-01-01"),
    lambda r: _c("date_of_birth", "after", "1985-06-30"),
    lambda r: _c("company.industry", "eq", r.choice(["retail", "manufacturing", "fintech"])),
    lambda r: _c("company.employee_count", "gte", r.choice([50, 200, 1000])),
    lambda r: _c("company.annual_revenue", "gt", 1_000_000_000),
    lambda r: _c("company.country", "eq", "ID"),
    lambda r: _c("company.created_at", "more_than_ago", {"years": 1}),
    lambda r: _c("rfm.segment", "in", r.sample(["champions", "loyal", "at_risk", "lost"], 2)),
    lambda r: _c("rfm.r_score", "gte", r.choice([3, 4, 5])),
    lambda r: _c("rfm.monetary", "gt", r.choice([500_000, 1_000_000])),
    lambda r: _c("rfm.recency_days", "lte", r.choice([30, 90])),
    lambda r: _c("cluster.id", "is_not_set"),
    lambda r: _c("custom.vip_level", "gte", r.choice([2, 3, 4])),
    lambda r: _c("custom.preferred_store", "eq", "Online"),
)

# Per object: filters over its own fields, and the aggregates that apply to it, each with
# the comparisons generated for it. Together they cover every (object, aggregate) pair the
# language accepts (tickets and campaign_events have no number field: no sum/avg).
_FILTERS: dict[str, tuple[Cond | None, ...]] = {
    "deals": (None, _c("status", "eq", "won"), _c("status", "in", ["open", "won"])),
    "tickets": (None, _c("priority", "in", ["high", "urgent"]), _c("status", "eq", "open")),
    "conversations": (None, _c("channel", "eq", "whatsapp"), _c("message_count", "gte", 3)),
    "campaign_events": (
        None,
        _c("event_type", "in", ["clicked", "replied"]),
        {"all": [_c("event_type", "eq", "clicked"), _c("campaign_id", "eq", "cmp_123")]},
    ),
    "orders": (None, _c("status", "eq", "completed"), _c("amount", "gte", 100_000)),
    "companies": (None, _c("industry", "eq", "retail"), _c("is_primary", "is_true")),
}

_AGGREGATES: dict[str, tuple[tuple[str, Callable[[random.Random], Any]], ...]] = {
    "deals": (
        ("count", lambda r: {"gte": r.choice([1, 2])}),
        ("count_distinct", lambda r: {"field": "pipeline", "gte": 2}),
        ("sum", lambda r: {"field": "amount", "gt": r.choice([1_000_000, 10_000_000])}),
        ("avg", lambda r: {"field": "amount", "gte": 5_000_000}),
        ("min", lambda r: {"field": "created_at", "op": "more_than_ago", "value": {"days": 30}}),
        ("max", lambda r: {"field": "amount", "gte": 20_000_000}),
    ),
    "tickets": (
        ("count", lambda r: {"gte": r.choice([1, 2, 3])}),
        ("count", lambda r: {"eq": 0}),
        ("count_distinct", lambda r: {"field": "category", "gte": 2}),
        ("min", lambda r: {"field": "created_at", "op": "within_last", "value": {"days": 365}}),
        ("max", lambda r: {"field": "created_at", "op": "within_last", "value": {"days": 30}}),
    ),
    "conversations": (
        ("count", lambda r: {"gte": r.choice([1, 3])}),
        ("count", lambda r: {"eq": 0}),
        ("count_distinct", lambda r: {"field": "channel", "gte": 2}),
        ("sum", lambda r: {"field": "message_count", "gte": r.choice([5, 20])}),
        ("avg", lambda r: {"field": "message_count", "gt": 4}),
        ("min", lambda r: {"field": "message_count", "lte": 2}),
        ("max", lambda r: {"field": "started_at", "op": "is_not_set"}),
    ),
    "campaign_events": (
        ("count", lambda r: {"gte": r.choice([1, 5])}),
        ("count_distinct", lambda r: {"field": "campaign_id", "gte": 2}),
        ("min", lambda r: {"field": "occurred_at", "op": "more_than_ago", "value": {"days": 90}}),
        ("max", lambda r: {"field": "occurred_at", "op": "within_last", "value": {"days": 7}}),
    ),
    "orders": (
        ("count", lambda r: {"gte": r.choice([1, 2, 3])}),
        ("count", lambda r: {"eq": 0}),
        ("count_distinct", lambda r: {"field": "currency", "gte": 1}),
        ("sum", lambda r: {"field": "amount", "gte": r.choice([500_000, 1_000_000])}),
        ("avg", lambda r: {"field": "amount", "between": [100_000, 1_000_000]}),
        ("min", lambda r: {"field": "amount", "lt": 50_000}),
        ("max", lambda r: {"field": "ordered_at", "op": "more_than_ago", "value": {"days": 90}}),
    ),
    "companies": (
        ("count", lambda r: {"gte": 1}),
        ("count_distinct", lambda r: {"field": "industry", "gte": 2}),
        ("sum", lambda r: {"field": "employee_count", "gte": 100}),
        ("avg", lambda r: {"field": "annual_revenue", "gt": 1_000_000_000}),
        ("min", lambda r: {"field": "employee_count", "lt": 20}),
        ("max", lambda r: {"field": "created_at", "op": "before", "value": "2024-01-01"}),
    ),
}

# Every (object, aggregate) pair, in a fixed order: has: conditions walk this cycle, so the
# first len(_HAS_CYCLE) of them cover all of it.
_HAS_CYCLE = [(obj, i) for obj, aggs in _AGGREGATES.items() for i in range(len(aggs))]


class _Gen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.basic_i = 0
        self.has_i = 0
        self.window_i = 0
        self.filter_i = 0

    def basic(self) -> Cond:
        make = _BASIC[self.basic_i % len(_BASIC)]
        self.basic_i += 1
        return make(self.rng)

    def has(self) -> Cond:
        obj, agg_i = _HAS_CYCLE[self.has_i % len(_HAS_CYCLE)]
        self.has_i += 1
        kind, compare = _AGGREGATES[obj][agg_i]
        filters = _FILTERS[obj]
        filt = filters[self.filter_i % len(filters)]
        self.filter_i += 1
        body: dict[str, Any] = {"object": obj}
        if filt is not None:
            body["where"] = filt
        days = WINDOWS[self.window_i % len(WINDOWS)]
        self.window_i += 1
        if days is not None:
            body["within"] = {"last_days": days}
        elif self.window_i % 3 == 0:
            body["within"] = {"between": ["2024-01-01", "2025-12-31"]}
        body[kind] = compare(self.rng)
        return {"has": body}


def _shape(i: int, g: _Gen, earlier: list[str]) -> dict[str, Any]:
    """The where/exclude of definition number i (1-based): ten shapes in turn."""
    r = g.rng
    shape = (i - 1) % 10
    ref = earlier[r.randrange(len(earlier))] if earlier else None
    if shape == 0:
        return {"where": g.basic()}
    if shape == 1:
        return {"where": {"all": [g.basic(), g.basic(), g.basic()]}}
    if shape == 2:
        return {"where": g.has()}
    if shape == 3:
        return {"where": {"all": [g.basic(), g.has()]}}
    if shape == 4:
        # nesting three levels deep: all > any > all / not
        return {
            "where": {
                "all": [
                    g.basic(),
                    {"any": [g.has(), {"all": [g.basic(), g.has()]}, {"not": g.basic()}]},
                ]
            }
        }
    if shape == 5:
        return {"where": {"any": [g.basic(), g.has()]}, "exclude": g.basic()}
    if shape == 6 and ref is not None:
        return {"where": {"all": [{"in_segment": ref}, g.basic()]}}
    if shape == 7 and ref is not None:
        return {"where": {"all": [g.has(), {"not": {"in_segment": ref}}]}}
    if shape == 8:
        return {
            "where": {"any": [g.has(), g.has(), g.basic()]},
            "exclude": {"any": [g.has(), g.basic()]},
        }
    if ref is not None and len(earlier) > 1:
        other = earlier[r.randrange(len(earlier))]
        return {
            "where": {"any": [{"in_segment": ref}, {"in_segment": other}, g.has()]},
            "exclude": {"not": g.basic()},
        }
    return {"where": {"not": g.has()}}


def _yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def generate(n: int = 200, seed: int = 7) -> list[tuple[str, str]]:
    """n template definitions: (path relative to segment_defs/, YAML text), in order."""
    g = _Gen(seed)
    out: list[tuple[str, str]] = []
    earlier: list[str] = []
    for i in range(1, n + 1):
        key = f"{PREFIX}{i:03d}"
        doc: dict[str, Any] = {
            "key": key,
            "name": f"Bench {i:03d}",
            "description": f"Generated by segmentation_dev.bench_defs (seed {seed}).",
            "account": "*",
            "owner": "bench",
            "visibility": "everyone",
            "tags": ["bench"],
            "expect": {"min_members": 0},
        }
        doc.update(_shape(i, g, earlier))
        header = "# Generated by segmentation_dev.bench_defs: do not edit.\n"
        out.append((f"{BENCH_DIR}/{key}.yml", header + _yaml(doc)))
        earlier.append(key)
    return out


def write(root: Path, n: int = 200, seed: int = 7) -> list[Path]:
    """Write the definitions under root (a project's segment_defs/), replacing earlier ones
    in segment_defs/_all/bench/ so a smaller n leaves no stale file behind."""
    target = root / BENCH_DIR
    if target.is_dir():
        for old in target.glob(f"{PREFIX}*.yml"):
            old.unlink()
    paths = []
    for rel, text in generate(n, seed):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
