"""The generated bench definitions: deterministic, all valid, and covering the language."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from _segments import PROJECT_DIR, project_dir

from segmentation.cli import main as cli
from segmentation.language.activity import AGGREGATES, OBJECTS
from segmentation.steps import definitions
from segmentation_dev import bench_defs


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    # The shipped definitions too: the generated ones must validate beside them.
    shutil.copytree(PROJECT_DIR / "segment_defs", tmp_path / "segment_defs")
    with project_dir(tmp_path):
        yield tmp_path


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _depth(node: Any) -> int:
    if isinstance(node, dict):
        inner = [_depth(node[k]) for k in ("all", "any", "not") if k in node]
        return 1 + max(inner) if inner else 0
    if isinstance(node, list):
        return max((_depth(n) for n in node), default=0)
    return 0


def test_generation_is_deterministic(tmp_path: Path) -> None:
    first = bench_defs.generate()
    assert first == bench_defs.generate(200, 7)
    assert first != bench_defs.generate(200, 8)
    assert len(first) == 200
    assert first[0][0] == "_all/bench/bench_001.yml"
    assert first[-1][0] == "_all/bench/bench_200.yml"
    a = [p.read_bytes() for p in bench_defs.write(tmp_path / "a")]
    b = [p.read_bytes() for p in bench_defs.write(tmp_path / "b")]
    assert a == b
    # a smaller rewrite leaves no file of the larger one behind
    bench_defs.write(tmp_path / "a", n=20)
    assert len(list((tmp_path / "a" / "_all" / "bench").glob("*.yml"))) == 20


def test_every_generated_definition_validates(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = bench_defs.write(project / "segment_defs")
    assert len(paths) == 200
    assert cli.main(["validate", "--offline"]) == 0, capsys.readouterr()
    plan = definitions.compile(None, offline=True)
    assert plan.ok, plan.errors
    bench = {s.key: s for s in plan.segments if s.key.startswith("bench_")}
    assert len(bench) == 200
    assert all(s.is_template and s.enabled for s in bench.values())


def test_the_definitions_mix_what_the_language_can_say() -> None:
    docs = [yaml.safe_load(text) for _, text in bench_defs.generate()]
    has = [n["has"] for d in docs for n in _walk(d) if "has" in n]
    pairs = {(h["object"], k) for h in has for k in AGGREGATES if k in h}
    number_fields = {"deals", "conversations", "orders", "companies"}
    expected = {
        (o, a) for o in OBJECTS for a in AGGREGATES if a not in ("sum", "avg") or o in number_fields
    }
    assert pairs == expected
    windows = {h.get("within", {}).get("last_days") for h in has}
    assert {7, 30, 90, 365, None} <= windows
    assert any("between" in h.get("within", {}) for h in has)
    assert any("where" in h for h in has) and any("where" not in h for h in has)
    assert sum("exclude" in d for d in docs) >= 20
    assert max(_depth(d["where"]) for d in docs) >= 3
    fields = {n["field"] for d in docs for n in _walk(d) if "field" in n and "op" in n}
    assert {"company.industry", "rfm.segment", "custom.vip_level", "tags"} <= fields
    # references point only at earlier definitions, so they can never form a cycle
    refs = 0
    for d in docs:
        for n in _walk(d):
            if "in_segment" in n:
                refs += 1
                assert n["in_segment"] < d["key"]
    assert refs >= 30
