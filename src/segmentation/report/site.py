"""Render the report's static HTML site from plain data (steps.report gathers it).

Pure rendering: no database, no settings. Templates are package data (templates/), every
value from YAML or the data goes through Jinja's autoescape, chart specs are embedded as
JSON inside `<script type="application/json">` (with `<`, `>` and `&` escaped, so no text
can end the script element), and the vega/vega-lite/vega-embed JavaScript is one local file
(assets/vega-embed.js), so a page needs no network access to draw its charts.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import vl_convert

from segmentation.report import charts
from segmentation.report.definition import Line, describe

Rows = list[dict[str, Any]]
# The Vega-Lite version altair writes specs for; the bundled JavaScript must match it.
VL_VERSION = ".".join(charts.alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
ASSET_JS = "vega-embed.js"
ASSET_CSS = "report.css"
# Marks a folder as a report site, the only kind render_site replaces.
MARKER = ".segments-report"


@dataclass
class Segment:
    account_id: str
    segment_key: str
    name: str
    description: str | None
    owner: str | None
    member_count: int
    as_of: dt.date | None
    stale: bool
    stale_reason: str | None = None
    tags: Sequence[str] = ()
    visibility: str | None = None
    definition_hash: str | None = None
    # history.segment_sizes, oldest first: as_of, member_count, entered, exited, stale
    sizes: Rows = field(default_factory=list)
    # the compiled plan's entry for this segment (condition, source_file); None if absent
    definition: Mapping[str, Any] | None = None
    # other segments of the account sharing members: other_key, other_name, shared, share
    overlap: Rows = field(default_factory=list)
    # marts rows for the report date; None: not computed yet for this date
    kpis: Mapping[str, Any] | None = None
    stability: Mapping[str, Any] | None = None


@dataclass
class Group:
    account_id: str
    group_key: str
    order: Sequence[str]
    fallback: str | None
    # current assignments per segment (serving): segment_key, contacts
    assignments: Rows = field(default_factory=list)
    # segment_migration rows at the report date (None: not computed yet)
    migration: Rows | None = None
    time_to_move: Rows | None = None


@dataclass
class Account:
    account_id: str
    segments: list[Segment] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    account_kpis: Mapping[str, Any] | None = None
    # rfm_scores aggregated per (r_score, f_score): contacts, avg_monetary; None: not computed
    rfm_grid: Rows | None = None
    rfm_segments: Rows | None = None
    cluster_profiles: Rows | None = None
    cluster_run: Mapping[str, Any] | None = None


@dataclass
class Site:
    as_of: dt.date | None
    generated_at: dt.datetime
    accounts: list[Account]
    run_id: str | None = None
    data_docs: str | None = None  # a URL of the GX Data Docs index, if they exist
    op_words: Mapping[str, str] = field(default_factory=dict)
    feature_specs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


# The KPIs the segment page compares with the account average (segment_kpis columns).
RATE_KPIS = [
    ("share_of_contacts", "share of contacts"),
    ("retention_rate", "retention"),
    ("delivered_rate", "delivered"),
    ("read_rate", "read"),
    ("clicked_rate", "clicked"),
    ("replied_rate", "replied"),
]
VALUE_KPIS = [("arpu", "ARPU"), ("open_tickets_per_member", "open tickets per member")]
STABILITY = [("retained_1d", "D+1"), ("retained_7d", "D+7"), ("retained_30d", "D+30")]


def slug(text: str) -> str:
    """A file name for an account, segment or group key: safe characters only, with a
    short hash when anything had to change (so distinct keys never share a file)."""
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", text)[:80] or "_"
    if clean != text:
        clean += "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return clean


def segment_path(account_id: str, segment_key: str) -> str:
    return f"segments/{slug(account_id)}/{slug(segment_key)}.html"


def group_path(account_id: str, group_key: str) -> str:
    return f"groups/{slug(account_id)}/{slug(group_key)}.html"


def account_path(account_id: str) -> str:
    return f"accounts/{slug(account_id)}.html"


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("segmentation.report", "templates"),
        autoescape=True,  # every template is HTML: escape everything from YAML and data
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = _pct
    env.filters["num"] = _num
    return env


def _pct(value: Any) -> str:
    return "\u2013" if value is None else f"{float(value):.1%}"


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "\u2013"
    return f"{float(value):,.{digits}f}"


class _Page:
    """One page's charts: each chart gets a container id and its spec as escaped JSON."""

    def __init__(self) -> None:
        self.specs: list[tuple[str, str]] = []

    def chart(self, spec: Mapping[str, Any]) -> str:
        chart_id = f"chart-{len(self.specs) + 1}"
        text = json.dumps(spec, separators=(",", ":"), sort_keys=True)
        # Inside a <script> element only `</` (and `<!--`) can end it: escape all three.
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        self.specs.append((chart_id, text))
        return chart_id


def render_site(site: Site, out_dir: Path) -> Path:
    """Write the site into `out_dir` (replaced whole, so removed segments leave no page) and
    return the path of its index.html."""
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MARKER).is_file():
        # Never delete a folder this did not write (`--out .`, say).
        raise FileExistsError(f"{out_dir} is not empty and holds no earlier report")
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "assets").mkdir(parents=True)
    (tmp / "assets" / ASSET_JS).write_text(_bundle(VL_VERSION), encoding="utf-8")
    css = (
        resources.files("segmentation.report").joinpath("templates").joinpath(ASSET_CSS).read_text()
    )
    (tmp / "assets" / ASSET_CSS).write_text(css, encoding="utf-8")

    _write(tmp, "index.html", "index.html", site, _index_context(site))
    for account in site.accounts:
        _write(tmp, account_path(account.account_id), "account.html", site, _account(account))
        for segment in account.segments:
            context = _segment(site, account, segment)
            _write(
                tmp,
                segment_path(account.account_id, segment.segment_key),
                "segment.html",
                site,
                context,
            )
        for group in account.groups:
            _write(
                tmp,
                group_path(account.account_id, group.group_key),
                "group.html",
                site,
                _group(account, group),
            )
    (tmp / MARKER).write_text("written by `segments report`; the folder is replaced whole\n")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.replace(out_dir)
    return out_dir / "index.html"


@functools.cache
def _bundle(vl_version: str) -> str:
    """vega, vega-lite and vega-embed in one classic script that sets window.vegaEmbed, so
    pages work from file:// too (the browser refuses module scripts from file:// URLs)."""
    return vl_convert.javascript_bundle(vl_version=vl_version)


def _write(root: Path, rel: str, template: str, site: Site, context: dict[str, Any]) -> None:
    page: _Page = context.pop("_page")
    depth = rel.count("/")
    html = (
        _environment()
        .get_template(template)
        .render(
            site=site,
            root="../" * depth,
            specs=page.specs,
            asset_js=ASSET_JS,
            asset_css=ASSET_CSS,
            segment_path=segment_path,
            group_path=group_path,
            account_path=account_path,
            **context,
        )
    )
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")


def _index_context(site: Site) -> dict[str, Any]:
    page = _Page()
    rows = []
    for account in site.accounts:
        for segment in account.segments:
            spark = page.chart(charts.sparkline(segment.sizes)) if segment.sizes else None
            rows.append({"account": account, "segment": segment, "sparkline": spark})
    return {"_page": page, "rows": rows}


def _account(account: Account) -> dict[str, Any]:
    page = _Page()
    ctx: dict[str, Any] = {"_page": page, "account": account}
    sizes = [{"label": s.name, "size": s.member_count} for s in account.segments]
    ctx["sizes_chart"] = page.chart(charts.size_bars(sizes, "label", "Members per segment"))
    ctx["rfm_chart"] = None
    if account.rfm_grid:
        ctx["rfm_chart"] = page.chart(
            charts.heatmap(
                account.rfm_grid,
                "f_score",
                "r_score",
                "contacts",
                "RFM grid: contacts",
                "frequency score (F)",
                "recency score (R)",
                sort_y=[5, 4, 3, 2, 1],
            )
        )
    ctx["rfm_segments_chart"] = None
    if account.rfm_segments:
        ctx["rfm_segments_chart"] = page.chart(
            charts.size_bars(account.rfm_segments, "rfm_segment", "RFM segments")
        )
    ctx["cluster_chart"] = None
    if account.cluster_profiles:
        ctx["cluster_chart"] = page.chart(
            charts.size_bars(account.cluster_profiles, "cluster_label", "Cluster sizes")
        )
    return ctx


def _segment(site: Site, account: Account, segment: Segment) -> dict[str, Any]:
    page = _Page()
    ctx: dict[str, Any] = {"_page": page, "account": account, "segment": segment}
    ctx["trend_chart"] = page.chart(charts.size_trend(segment.sizes)) if segment.sizes else None
    ctx["flow_chart"] = page.chart(charts.flow_bars(segment.sizes)) if segment.sizes else None
    ctx["overlap_chart"] = (
        page.chart(charts.overlap_bars(segment.overlap)) if segment.overlap else None
    )
    condition = (segment.definition or {}).get("condition")
    line: Line | None = describe(condition, site.op_words, site.feature_specs)
    ctx["definition"] = line
    ctx["kpi_chart"] = None
    ctx["kpi_rows"] = []
    if segment.kpis is not None:
        average = account.account_kpis or {}
        compare = []
        for column, label in RATE_KPIS:
            if segment.kpis.get(column) is not None:
                compare.append({"measure": label, "who": "segment", "value": segment.kpis[column]})
                compare.append({"measure": label, "who": "account", "value": average.get(column)})
        if compare:
            ctx["kpi_chart"] = page.chart(charts.compare_bars(compare, "Rates vs account average"))
        ctx["kpi_rows"] = [
            (label, segment.kpis.get(column), average.get(column), column in dict(VALUE_KPIS))
            for column, label in RATE_KPIS + VALUE_KPIS
        ]
    ctx["stability_chart"] = None
    if segment.stability is not None:
        shares = [
            {"measure": label, "who": "segment", "value": segment.stability.get(column)}
            for column, label in STABILITY
            if segment.stability.get(column) is not None
        ]
        if shares:
            ctx["stability_chart"] = page.chart(
                charts.compare_bars(shares, "Share of members still members")
            )
    return ctx


def _group(account: Account, group: Group) -> dict[str, Any]:
    page = _Page()
    ctx: dict[str, Any] = {"_page": page, "account": account, "group": group}
    names = {s.segment_key: s.name for s in account.segments}
    order = [*group.order, *([group.fallback] if group.fallback else [])]
    ctx["names"] = names
    ctx["assign_chart"] = None
    if group.assignments:
        ctx["assign_chart"] = page.chart(
            charts.size_bars(group.assignments, "segment_key", "Contacts assigned now")
        )
    ctx["migration_charts"] = []
    for interval, rows in _by_interval(group.migration or []):
        first = rows[0]
        title = f"Moves from {first['from_as_of']} to {first['to_as_of']} ({interval} day(s))"
        spec = charts.heatmap(
            rows,
            "to_segment",
            "from_segment",
            "contacts",
            title,
            "to segment",
            "from segment",
            sort_x=_present(order, rows, "to_segment"),
            sort_y=_present(order, rows, "from_segment"),
        )
        ctx["migration_charts"].append(page.chart(spec))
    return ctx


def _by_interval(rows: Rows) -> list[tuple[Any, Rows]]:
    out: dict[Any, Rows] = {}
    for row in rows:
        out.setdefault(row["interval_days"], []).append(row)
    return sorted(out.items(), key=lambda item: item[0])


def _present(order: Sequence[str], rows: Rows, column: str) -> list[str]:
    """The group's order, then any other value in the rows (sorted)."""
    seen = {r[column] for r in rows}
    return [k for k in order if k in seen] + sorted(seen - set(order))
