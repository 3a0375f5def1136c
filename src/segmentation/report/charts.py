"""The report's charts as Vega-Lite specs (altair), rendered in the page by the inlined
vega-embed bundle (site.py). Every function takes plain rows (dicts) and returns the spec
as a dict; none of them reads a database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt

Rows = Sequence[Mapping[str, Any]]

_ENTERED = "#2a9d8f"
_EXITED = "#e76f51"
_LINE = "#264653"


def _data(rows: Rows, columns: Sequence[str]) -> alt.Data:
    return alt.Data(values=[{c: _plain(row.get(c)) for c in columns} for row in rows])


def _plain(value: Any) -> Any:
    """JSON-ready: dates as ISO strings, decimals as floats."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return float(value)


def sparkline(sizes: Rows) -> dict[str, Any]:
    """Members per recorded date, tiny and without axes (the index)."""
    chart = (
        alt.Chart(_data(sizes, ["as_of", "member_count"]))
        .mark_line(color=_LINE, point=alt.OverlayMarkDef(size=12, color=_LINE))
        .encode(
            x=alt.X("as_of:T", axis=None),
            y=alt.Y("member_count:Q", axis=None, scale=alt.Scale(zero=False)),
            tooltip=[alt.Tooltip("as_of:T", title="as of"), alt.Tooltip("member_count:Q")],
        )
        .properties(width=120, height=28)
        .configure_view(stroke=None)
    )
    return chart.to_dict()


def size_trend(sizes: Rows) -> dict[str, Any]:
    chart = (
        alt.Chart(_data(sizes, ["as_of", "member_count", "stale"]))
        .mark_line(color=_LINE, point=True)
        .encode(
            # One tick per day at most: a few recorded dates must not repeat a label.
            x=alt.X("as_of:T", title="as-of date", axis=alt.Axis(format="%b %d", tickCount="day")),
            y=alt.Y("member_count:Q", title="members"),
            tooltip=["as_of:T", "member_count:Q", "stale:N"],
        )
        .properties(width=380, height=180, title="Members")
    )
    return chart.to_dict()


def flow_bars(sizes: Rows) -> dict[str, Any]:
    """Entered (up) and exited (down) per recorded date."""
    values = []
    for row in sizes:
        day = _plain(row.get("as_of"))
        values.append({"as_of": day, "change": "entered", "contacts": int(row.get("entered") or 0)})
        values.append({"as_of": day, "change": "exited", "contacts": -int(row.get("exited") or 0)})
    chart = (
        alt.Chart(alt.Data(values=values))
        .mark_bar()
        .encode(
            x=alt.X("as_of:O", title="as-of date", timeUnit="yearmonthdate"),
            y=alt.Y("contacts:Q", title="contacts (exited below zero)"),
            color=alt.Color(
                "change:N",
                scale=alt.Scale(domain=["entered", "exited"], range=[_ENTERED, _EXITED]),
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=["as_of:T", "change:N", "contacts:Q"],
        )
        .properties(width=380, height=180, title="Entered and exited")
    )
    return chart.to_dict()


def overlap_bars(rows: Rows) -> dict[str, Any]:
    """Contacts shared with each other segment of the account."""
    chart = (
        alt.Chart(_data(rows, ["other_name", "shared", "share"]))
        .mark_bar(color=_LINE)
        .encode(
            x=alt.X("share:Q", title="share of this segment's members", axis=alt.Axis(format="%")),
            y=alt.Y("other_name:N", title=None, sort="-x"),
            tooltip=["other_name:N", "shared:Q", alt.Tooltip("share:Q", format=".1%")],
        )
        .properties(width=420, height=alt.Step(18), title="Overlap with other segments")
    )
    return chart.to_dict()


def compare_bars(rows: Rows, title: str, percent: bool = True) -> dict[str, Any]:
    """Grouped bars: each measure for the segment and the account average."""
    axis = alt.Axis(format="%") if percent else alt.Axis()
    chart = (
        alt.Chart(_data(rows, ["measure", "who", "value"]))
        .mark_bar()
        .encode(
            y=alt.Y("measure:N", title=None),
            yOffset=alt.YOffset("who:N"),
            x=alt.X("value:Q", title=None, axis=axis),
            color=alt.Color(
                "who:N",
                title=None,
                scale=alt.Scale(domain=["segment", "account"], range=[_LINE, "#a8dadc"]),
            ),
            tooltip=["measure:N", "who:N", alt.Tooltip("value:Q", format=".3~f")],
        )
        .properties(width=420, height=alt.Step(14), title=title)
    )
    return chart.to_dict()


def heatmap(
    rows: Rows,
    x: str,
    y: str,
    value: str,
    title: str,
    x_title: str,
    y_title: str,
    sort_x: Sequence[Any] | None = None,
    sort_y: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """A matrix of counts: colour and the number in each cell (migration, the RFM grid)."""
    base = alt.Chart(_data(rows, [x, y, value])).encode(
        x=alt.X(f"{x}:O", title=x_title, sort=list(sort_x) if sort_x else "ascending"),
        y=alt.Y(f"{y}:O", title=y_title, sort=list(sort_y) if sort_y else "ascending"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color(f"{value}:Q", title=value, scale=alt.Scale(scheme="blues")),
        tooltip=[f"{x}:O", f"{y}:O", f"{value}:Q"],
    )
    labels = base.mark_text(baseline="middle", fontSize=11).encode(
        text=alt.Text(f"{value}:Q", format=",.0f"),
        color=alt.condition(alt.datum[value] > 0, alt.value("#1d3557"), alt.value("#999999")),
    )
    return (
        (cells + labels).properties(width=alt.Step(56), height=alt.Step(28), title=title).to_dict()
    )


def size_bars(rows: Rows, label: str, title: str) -> dict[str, Any]:
    """Horizontal bars of `size` per `label` (cluster profiles, RFM segments, segments)."""
    chart = (
        alt.Chart(_data(rows, [label, "size"]))
        .mark_bar(color=_LINE)
        .encode(
            x=alt.X("size:Q", title="contacts"),
            y=alt.Y(f"{label}:N", title=None, sort="-x"),
            tooltip=[f"{label}:N", "size:Q"],
        )
        .properties(width=420, height=alt.Step(18), title=title)
    )
    return chart.to_dict()
