"""Where this project's definitions are (from the settings), for the pure language layer."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path

from segmentation import settings
from segmentation.language.project import DefinitionSet, Layout
from segmentation.language.project import load_definitions as _load
from segmentation.language.regex import RegexCheck, offline_regex_check


def layout() -> Layout:
    return Layout(settings.project_dir())


def defs_dir() -> Path:
    return layout().defs_dir


def display_path(path: Path) -> str:
    return layout().display(path)


def load_definitions(
    paths: Iterable[Path | str] | None = None,
    accounts: Collection[str] | None = None,
    regex_check: RegexCheck = offline_regex_check,
) -> DefinitionSet:
    """Each file validated alone (no cross-file checks): `language.project.load_definitions`
    on this project's segment_defs/."""
    return _load(layout(), paths, accounts, regex_check)
