"""Finding definition files and validating a whole set of them together.

Layout: segment_defs/<account_id>/<segment_key>.yml, templates in segment_defs/_all/.
Cross-file checks (duplicate keys in one account, unknown accounts) live here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from segmentation.language.grammar import parse_text
from segmentation.language.issues import Issue, Issues, Loc
from segmentation.language.model import TEMPLATE_DIR, Segment
from segmentation.language.regex import RegexCheck, offline_regex_check
from segmentation.language.suggest import did_you_mean

DEFS_DIR = "segment_defs"
SUFFIXES = (".yml", ".yaml")


@dataclass(frozen=True)
class Layout:
    """Where a project's definitions live. The language reads no settings: its caller (the
    compiler) says where the project is."""

    project_dir: Path

    @property
    def defs_dir(self) -> Path:
        return self.project_dir / DEFS_DIR

    def account_of(self, path: Path | str) -> str | None:
        """The account folder a file is in (segment_defs/<account>/...), resolved like
        `display` names it; None for templates (_all) and files outside segment_defs/."""
        raw = Path(path)
        candidates = [raw] if raw.is_absolute() else [self.project_dir / raw, Path.cwd() / raw]
        root = self.defs_dir.resolve()
        for candidate in candidates:
            try:
                parts = candidate.resolve().relative_to(root).parts
            except ValueError:
                continue
            if len(parts) >= 2 and not parts[0].startswith("_"):
                return parts[0]
            return None
        return None

    def display(self, path: Path) -> str:
        """How a file is named in errors: relative to the project (or cwd) when possible."""
        path = path.resolve()
        for base in (self.project_dir.resolve(), Path.cwd().resolve()):
            try:
                return str(path.relative_to(base))
            except ValueError:
                continue
        return str(path)


def discover(
    layout: Layout, paths: Iterable[Path | str] | None = None
) -> tuple[list[Path], Issues]:
    """The definition files under `paths` (default: the project's segment_defs/)."""
    issues = Issues()
    files: list[Path] = []
    for raw in paths or [layout.defs_dir]:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            issues.add(Loc(str(raw), 1, 1), "no such file or directory")
    # segment_defs/<account>/_groups/*.yml are priority groups (definitions/groups.py)
    unique = list(dict.fromkeys(p.resolve() for p in files if p.parent.name != "_groups"))
    return unique, issues


@dataclass
class DefinitionSet:
    segments: list[Segment] = field(default_factory=list)
    issues: Issues = field(default_factory=Issues)

    @property
    def errors(self) -> list[Issue]:
        return self.issues.sorted()


def load_definitions(
    layout: Layout,
    paths: Iterable[Path | str] | None = None,
    accounts: Collection[str] | None = None,
    regex_check: RegexCheck = offline_regex_check,
    exclude: Collection[str] = (),
) -> DefinitionSet:
    """Validate every file; `accounts` (when known) are the account ids that exist;
    `regex_check` decides which `matches` patterns PostgreSQL can run (regex.py).
    `exclude`: account folders (segment_defs/<account>/) left out, as if absent."""
    files, issues = discover(layout, paths)
    result = DefinitionSet(issues=issues)
    for path in files:
        if exclude and layout.account_of(path) in exclude:
            continue
        file = layout.display(path)
        if path.suffix not in SUFFIXES:
            result.issues.add(Loc(file), "a segment definition must be a .yml or .yaml file")
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            result.issues.add(Loc(file), f"cannot read the file: {exc}")
            continue
        segment, file_issues = parse_text(
            text, file, path, _account_dir(layout, path), regex_check=regex_check
        )
        result.issues.extend(file_issues)
        if segment is not None:
            result.segments.append(segment)
    _check_unique(result)
    if accounts is not None:
        _check_accounts(result, accounts)
    result.segments.sort(key=lambda s: (s.account, s.key))
    return result


def _account_dir(layout: Layout, path: Path) -> str:
    """The folder that says whose definition a file is: its parent, except that anything
    below segment_defs/_all/ (such as the generated _all/bench/) is a template."""
    try:
        parts = path.resolve().relative_to(layout.defs_dir.resolve()).parts
    except ValueError:
        parts = ()
    if len(parts) > 2 and parts[0] == TEMPLATE_DIR:
        return TEMPLATE_DIR
    return path.parent.name


def _check_unique(result: DefinitionSet) -> None:
    seen: dict[tuple[str, str], Segment] = {}
    models: dict[str, Segment] = {}
    for seg in result.segments:
        first = seen.get((seg.account, seg.key))
        if first is not None:
            where = "templates" if seg.is_template else f"account '{seg.account}'"
            result.issues.add(
                seg.loc,
                f"duplicate segment key '{seg.key}' in {where} (also in {first.source_file})",
            )
            continue
        clash = models.get(seg.model_name)
        if clash is not None:
            result.issues.add(
                seg.loc,
                f"segment '{seg.account}/{seg.key}' would share the model name "
                f"'{seg.model_name}' with {clash.source_file}",
            )
            continue
        seen[(seg.account, seg.key)] = seg
        models[seg.model_name] = seg
    bad = [s for s in result.segments if seen.get((s.account, s.key)) is not s]
    result.segments = [s for s in result.segments if s not in bad]


def _check_accounts(result: DefinitionSet, accounts: Collection[str]) -> None:
    for seg in list(result.segments):
        if seg.is_template or seg.account in accounts:
            continue
        hint = did_you_mean(seg.account, sorted(accounts))
        if not accounts:
            # An empty database is the usual cause on a fresh setup: say so.
            hint = (
                " (crm_raw.accounts is empty: load your CRM data or `segments demo-data`, "
                "or validate with --offline)"
            )
        result.issues.add(seg.account_loc or seg.loc, f"unknown account '{seg.account}'{hint}")
        result.segments.remove(seg)
