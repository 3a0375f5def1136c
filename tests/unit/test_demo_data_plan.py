"""The demo data generator without a server: the COPY text it generates, its size checks and
its default anchor date (what lands in crm_raw is in tests/warehouse/test_demo_data.py)."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from segmentation.cli import main as cli
from segmentation.errors import DemoDataError
from segmentation_dev import demo_data

ANCHOR = dt.date(2026, 3, 1)


def test_copy_text_is_byte_identical_for_the_same_inputs() -> None:
    def digest(seed: int, anchor: dt.date) -> str:
        # 9000 contacts: the first account spans two generation chunks.
        plan = demo_data.make_plan(2, 9000, seed, anchor)
        assert plan.accounts[0].contacts > demo_data.CHUNK
        h = hashlib.sha256()
        for table in demo_data.TABLES:
            for block in demo_data.iter_copy_text(plan, table):
                h.update(block.encode())
        return h.hexdigest()

    # Two independent generations of the same inputs; the other comparisons reuse the first.
    first = digest(3, ANCHOR)
    assert first == digest(3, ANCHOR)
    assert first != digest(4, ANCHOR)
    assert first != digest(3, ANCHOR + dt.timedelta(days=1))


def test_bad_sizes_are_refused_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DemoDataError, match="at least --accounts"):
        demo_data.make_plan(accounts=5, contacts=3, seed=1)
    assert cli.main(["demo-data", "--accounts", "0"]) == 1
    assert "--accounts must be between 1 and 999" in capsys.readouterr().err


def test_default_anchor_is_today_in_jakarta() -> None:
    from zoneinfo import ZoneInfo

    today = dt.datetime.now(ZoneInfo("Asia/Jakarta")).date()
    assert demo_data.make_plan(1, 10, 1).anchor in (today, today + dt.timedelta(days=1))
