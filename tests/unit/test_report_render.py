"""The report's rendering (segmentation.report) without a database or a browser: pages,
escaping of hostile names and descriptions, "not computed yet" sections, readable
definitions and the chart specs embedded in each page."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from segmentation.language.operators import OPERATORS
from segmentation.report import site as report_site
from segmentation.report.definition import describe

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
D1, D2, D3 = dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 22)
OP_WORDS = {name: op.description for name, op in OPERATORS.items()}
CONDITION = {
    "kind": "all",
    "nodes": [
        {"kind": "condition", "field": "lifecycle_stage", "op": "eq", "value": "customer"},
        {"kind": "condition", "field": "consent_whatsapp", "op": "is_true"},
        {
            "kind": "any",
            "nodes": [
                {"kind": "condition", "field": "loyalty_tier", "op": "in", "value": ["gold"]},
                {"kind": "condition", "field": "loyalty_points", "op": "gte", "value": "5000"},
            ],
        },
        {
            "kind": "not",
            "node": {"kind": "condition", "field": "email", "op": "ends_with", "value": HOSTILE},
        },
        {
            "kind": "condition",
            "field": "created_at",
            "op": "more_than_ago",
            "value": {"unit": "days", "n": 180},
        },
    ],
}


def _sizes() -> list[dict]:
    return [
        {"as_of": D1, "member_count": 10, "entered": 10, "exited": 0, "stale": False},
        {"as_of": D2, "member_count": 12, "entered": 3, "exited": 1, "stale": False},
        {"as_of": D3, "member_count": 11, "entered": 0, "exited": 1, "stale": False},
    ]


def _segment(key: str, name: str, **extra) -> report_site.Segment:
    return report_site.Segment(
        account_id="acme",
        segment_key=key,
        name=name,
        description=extra.pop("description", ""),
        owner="growth",
        member_count=11,
        as_of=D3,
        stale=False,
        sizes=_sizes(),
        **extra,
    )


def _site(with_marts: bool) -> report_site.Site:
    hostile = _segment(
        "hostile",
        HOSTILE,
        description=HOSTILE,
        definition={"condition": CONDITION, "source_file": "segment_defs/acme/hostile.yml"},
        overlap=[{"other_key": "plain", "other_name": "Plain", "shared": 4, "share": 4 / 11}],
    )
    plain = _segment(
        "plain",
        "Plain",
        overlap=[{"other_key": "hostile", "other_name": HOSTILE, "shared": 4, "share": 0.4}],
    )
    account = report_site.Account("acme", segments=[hostile, plain])
    group = report_site.Group(
        "acme", "lifecycle", ["hostile"], "plain", assignments=[{"segment_key": "plain", "size": 7}]
    )
    account.groups = [group]
    if with_marts:
        kpis = {
            "share_of_contacts": 0.1,
            "retention_rate": 0.5,
            "delivered_rate": 0.9,
            "read_rate": 0.7,
            "clicked_rate": 0.2,
            "replied_rate": 0.1,
            "arpu": 120.5,
            "open_tickets_per_member": 0.3,
        }
        hostile.kpis = kpis
        hostile.stability = {
            "retained_1d": 0.9,
            "retained_7d": 0.8,
            "retained_30d": None,
            "churn_rate": 0.05,
            "mean_stint_days": 3.5,
            "median_stint_days": 3,
        }
        account.account_kpis = {**kpis, "retention_rate": 0.3}
        account.rfm_grid = [
            {"r_score": r, "f_score": f, "contacts": r * f}
            for r in range(1, 6)
            for f in range(1, 6)
        ]
        account.rfm_segments = [{"rfm_segment": "champions", "size": 5}]
        account.cluster_profiles = [
            {
                "cluster_id": 0,
                "cluster_label": HOSTILE,
                "size": 9,
                "features": {"recency_days": 3.2},
            }
        ]
        account.cluster_run = {"status": "clustered", "k": 2, "silhouette": 0.61, "note": None}
        group.migration = [
            {
                "from_as_of": D2,
                "to_as_of": D3,
                "interval_days": 1,
                "from_segment": a,
                "to_segment": b,
                "contacts": 3,
            }
            for a in ("hostile", "plain")
            for b in ("hostile", "plain")
        ]
    return report_site.Site(
        as_of=D3,
        generated_at=dt.datetime(2026, 11, 22, 9, tzinfo=dt.UTC),
        accounts=[account],
        run_id="manual__x",
        op_words=OP_WORDS,
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for with_marts in (False, True):
        target = tmp_path_factory.mktemp("report") / "site"
        report_site.render_site(_site(with_marts), target)
        out["marts" if with_marts else "bare"] = target
    return out


def _pages(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*.html")}


def test_every_page_is_written(rendered: dict[str, Path]) -> None:
    assert set(_pages(rendered["bare"])) == {
        "index.html",
        "accounts/acme.html",
        "segments/acme/hostile.html",
        "segments/acme/plain.html",
        "groups/acme/lifecycle.html",
    }
    assert (rendered["bare"] / "assets" / report_site.ASSET_JS).stat().st_size > 100_000


@pytest.mark.parametrize("variant", ["bare", "marts"])
def test_hostile_text_is_escaped_everywhere(rendered: dict[str, Path], variant: str) -> None:
    for name, html in _pages(rendered[variant]).items():
        assert HOSTILE not in html, name
        assert "<img" not in html, name
        # Only the page's own script elements: no text from the data ends or opens one.
        opened = len(re.findall(r"<script\b", html))
        assert opened == html.count("</script>"), name
    page = _pages(rendered[variant])["segments/acme/hostile.html"]
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_chart_specs_are_valid_json_and_keep_the_text(rendered: dict[str, Path]) -> None:
    html = _pages(rendered["marts"])["segments/acme/plain.html"]
    specs = re.findall(
        r'<script type="application/json" id="([\w-]+)-spec">(.*?)</script>', html, re.S
    )
    containers = re.findall(r'<div class="chart" data-chart="([\w-]+)">', html)
    assert specs and sorted(c for c, _ in specs) == sorted(containers)
    texts = [json.loads(body) for _, body in specs]
    # the hostile name survives as data in the overlap chart, for vega to draw as text
    assert HOSTILE in {text for spec in texts for text in _strings(spec)}


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_sections_without_marts_say_not_computed(rendered: dict[str, Path]) -> None:
    pages = _pages(rendered["bare"])
    note = "not computed yet for this date (2026-11-22)"
    segment = pages["segments/acme/hostile.html"]
    assert segment.count(note) == 2  # KPIs and stability
    assert pages["accounts/acme.html"].count(note) == 2  # RFM and clusters
    assert note in pages["groups/acme/lifecycle.html"]  # migration
    # what exists today is drawn: size trend, flow, overlap
    assert len(re.findall(r'class="chart"', segment)) == 3


def test_sections_with_marts_draw_charts(rendered: dict[str, Path]) -> None:
    pages = _pages(rendered["marts"])
    for name in ("segments/acme/hostile.html", "accounts/acme.html", "groups/acme/lifecycle.html"):
        assert "not computed yet" not in pages[name], name
    # the mart has no row for segment plain: only its sections say so
    assert pages["segments/acme/plain.html"].count("not computed yet") == 2
    assert len(re.findall(r'class="chart"', pages["segments/acme/hostile.html"])) == 5
    assert len(re.findall(r'class="chart"', pages["accounts/acme.html"])) == 4
    assert len(re.findall(r'class="chart"', pages["groups/acme/lifecycle.html"])) == 2
    assert "120.50" in pages["segments/acme/hostile.html"]  # ARPU vs account
    assert "50.0%" in pages["segments/acme/hostile.html"]  # retention


def test_definition_reads_as_words() -> None:
    line = describe(CONDITION, OP_WORDS)
    assert line is not None
    flat = []

    def walk(node, depth=0):
        flat.append(("  " * depth) + node.text)
        for child in node.children:
            walk(child, depth + 1)

    walk(line)
    assert flat == [
        "all of:",
        "  lifecycle_stage equals 'customer'",
        "  consent_whatsapp is true",
        "  any of:",
        "    loyalty_tier is one of ['gold']",
        "    loyalty_points greater than or equal 5000",
        "  not:",
        f"    email ends with the text '{HOSTILE}'",
        "  created_at is more than 180 days ago",
    ]


def test_file_names_cannot_leave_the_site() -> None:
    assert report_site.slug("../../etc") != "../../etc"
    assert "/" not in report_site.slug("a/b") and ".." not in report_site.slug("..")
    assert report_site.slug("a/b") != report_site.slug("a_b")
    assert report_site.segment_path("acme", "loyal") == "segments/acme/loyal.html"


def test_cli_report_takes_an_output_folder() -> None:
    import inspect

    import typer

    from segmentation.cli import main as cli
    from segmentation.cli import report

    command = typer.main.get_command(cli.app).commands["report"]
    assert command.make_context("report", ["--out", "site"]).params["out_dir"] == Path("site")
    assert command.make_context("report", []).params["out_dir"] is None
    assert inspect.unwrap(command.callback) is inspect.unwrap(report.report)


def test_the_plan_carries_what_the_report_shows() -> None:
    """The compiled plan (read by steps.report) holds each definition's name, owner and
    condition tree, and every feature's spec, so a `has:` reads as words."""
    from segmentation.steps import definitions

    plan = definitions.compile(offline=True).to_json()
    by_key = {(s["account"], s["key"]): s for s in plan["segments"]}
    loyal = by_key[("acme", "loyal_customers")]
    assert (loyal["name"], loyal["owner"]) == ("Loyal customers", "growth-team")
    lines = describe(loyal["condition"], OP_WORDS, plan["feature_specs"])
    assert lines is not None and lines.text == "all of:"
    assert "lifecycle_stage equals 'customer'" in [c.text for c in lines.children]
    feature_ids = {f for ids in plan["features"].values() for f in ids}
    assert feature_ids and feature_ids == set(plan["feature_specs"])
    active = by_key[("*", "active_leads")]
    (any_of,) = [
        c
        for c in describe(active["condition"], OP_WORDS, plan["feature_specs"]).children
        if c.text == "any of:"
    ]
    assert "count of conversations in the last 30 days greater than or equal 1" in [
        c.text for c in any_of.children
    ]


def test_a_folder_that_is_not_a_report_is_never_replaced(tmp_path: Path) -> None:
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds no earlier report"):
        report_site.render_site(_site(False), precious)
    assert (precious / "keep.txt").read_text() == "mine"
    # an earlier report is replaced whole: a page it no longer has is gone
    site = tmp_path / "site"
    report_site.render_site(_site(False), site)
    (site / "segments" / "acme" / "removed.html").write_text("old")
    report_site.render_site(_site(False), site)
    assert not (site / "segments" / "acme" / "removed.html").exists()
    assert (site / "index.html").is_file()
