"""The report in a real headless browser: on a copy of the shared demo warehouse (the
pipeline run on small demo data for two as-of dates, tests/_demo.py), `build_report` writes
the site, and Debian's chromium (driven by Playwright's Python API, pointed at the
executable: never `playwright install`) opens the index, a segment page, an account page and
a priority group page from file:// URLs with every other request blocked. Each chart
container must hold a drawn SVG, the console must show no error, no request may fail, and a
hostile segment name and description must stay text. Screenshots are saved under
.local/artifacts/report/ (git-ignored)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from _demo import D1, D2, DemoWarehouse
from _segments import project_dir

from segmentation.steps import report

pytestmark = pytest.mark.slow

PROJECT_DIR = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT_DIR / ".local" / "artifacts" / "report"
DATES = (D1, D2)
HOSTILE_NAME = '<img src=x onerror="window.__xss = 1">Hostile <b>name</b></script>'
HOSTILE_DESCRIPTION = "<script>window.__xss = 2</script>& more"
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Every chart container has finished (drawn or failed) once this holds.
ALL_SETTLED = "() => [...document.querySelectorAll('[data-chart]')].every(e => e.dataset.rendered)"
# Per chart container: how it settled, and how many drawn marks its SVG holds.
CHART_STATE = """() => [...document.querySelectorAll('[data-chart]')].map(e => {
  const svg = e.querySelector('svg');
  return {state: e.dataset.rendered,
          marks: svg ? svg.querySelectorAll('path, rect, line, text, circle').length : 0,
          width: svg ? svg.getBoundingClientRect().width : 0};
})"""


def chromium() -> str:
    """The browser scripts/ensure-chromium.sh (make setup) installs, or SEGMENTS_CHROMIUM."""
    found = os.environ.get("SEGMENTS_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None
    )
    if not found:
        pytest.fail(
            "No chromium: run `make setup` (scripts/ensure-chromium.sh) or set SEGMENTS_CHROMIUM"
        )
    return found


@pytest.fixture(scope="module")
def pg_template(demo_day2: DemoWarehouse) -> str:
    """A copy of the shared demo warehouse (tests/_demo.py), run for both DATES (quarantined
    segments published the rest)."""
    assert demo_day2.dates == DATES
    return demo_day2.database


@pytest.fixture(scope="module")
def site(
    pg_database: str, demo_day2: DemoWarehouse, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    with psycopg.connect(autocommit=True) as conn:
        # The catalogue's name and description reach serving from YAML: make one hostile.
        conn.execute(
            "update segments_serving.segments set name = %s, description = %s "
            "where account_id = 'acme' and segment_key = 'whatsapp_reachable'",
            (HOSTILE_NAME, HOSTILE_DESCRIPTION),
        )
    with project_dir(demo_day2.project):  # the compiled plan of the runs
        index = report.build_report(tmp_path_factory.mktemp("report") / "site")
    return index.parent


@pytest.fixture(scope="module")
def browser(site: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    profile = site.parent / "chromium-profile"
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=chromium(),
            args=BROWSER_ARGS,
            headless=True,
            viewport={"width": 1200, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def open_page(browser: Any, site: Path, rel: str) -> tuple[Any, list[str]]:
    """Open a page of the site; return it and every problem seen: console errors, page
    errors, failed requests and any request leaving the site's own files."""
    page = browser.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url}"))
    page.on(
        "dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss())
    )

    def only_files(route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            problems.append(f"network request: {route.request.url}")
            route.abort()

    page.route("**/*", only_files)
    response = page.goto((site / rel).as_uri())
    assert response is None or response.ok, rel
    page.wait_for_function(ALL_SETTLED, timeout=60_000)
    return page, problems


def assert_charts_drawn(page: Any, rel: str, at_least: int) -> None:
    charts = page.evaluate(CHART_STATE)
    assert len(charts) >= at_least, (rel, charts)
    for chart in charts:
        assert chart["state"] == "true", (rel, charts)
        assert chart["marks"] > 0 and chart["width"] > 0, (rel, charts)


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def biggest_segment(site: Path, account: str) -> str:
    pages = sorted((site / "segments" / account).glob("*.html"))
    assert pages, f"no segment pages for {account}"
    return f"segments/{account}/{max(pages, key=lambda p: p.stat().st_size).name}"


def test_index_lists_accounts_with_sparklines(browser: Any, site: Path) -> None:
    page, problems = open_page(browser, site, "index.html")
    assert problems == []
    assert_charts_drawn(page, "index.html", at_least=2)
    assert page.locator("section.account h2").all_inner_texts() == ["acme", "globex"]
    # a sparkline per segment with history, in its own table cell
    rows = page.locator("section.account tbody tr").count()
    assert page.locator("tbody td .chart svg").count() == rows
    screenshot(page, "index")


def test_segment_page_draws_its_charts(browser: Any, site: Path) -> None:
    rel = biggest_segment(site, "globex")
    page, problems = open_page(browser, site, rel)
    assert problems == []
    # size trend, entered/exited, overlap (KPIs and stability wait for the marts)
    assert_charts_drawn(page, rel, at_least=3)
    assert page.locator("ul.definition li").count() >= 1
    screenshot(page, "segment")


def test_account_and_group_pages(browser: Any, site: Path) -> None:
    for rel, name in (
        ("accounts/globex.html", "account"),
        ("groups/globex/lifecycle.html", "group"),
    ):
        page, problems = open_page(browser, site, rel)
        assert problems == [], rel
        assert_charts_drawn(page, rel, at_least=1)
        screenshot(page, name)


def test_hostile_name_and_description_stay_text(browser: Any, site: Path) -> None:
    for rel in ("index.html", "segments/acme/whatsapp_reachable.html", "accounts/acme.html"):
        page, problems = open_page(browser, site, rel)
        assert problems == [], rel
        assert page.evaluate("() => window.__xss") is None, rel
        assert page.locator("main img, main b, main script").count() == 0, rel
        assert HOSTILE_NAME in page.locator("main").inner_text(), rel
    page, _ = open_page(browser, site, "segments/acme/whatsapp_reachable.html")
    assert page.locator("h1").inner_text().startswith(HOSTILE_NAME)
    assert page.locator("p.description").inner_text() == HOSTILE_DESCRIPTION
    # the overlap chart of another acme segment draws the hostile name as SVG text
    screenshot(page, "hostile")
