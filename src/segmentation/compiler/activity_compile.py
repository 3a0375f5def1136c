"""The cross-definition steps of activity conditions, run after every file validated alone.

1. `in_segment` references resolve (unknown, disabled, cycles are errors);
2. package gating (has: needs ultimate or 360; templates skip plus accounts);
3. priority groups load and refer to enabled segments;
4. rendering: one feature model per activity table that some enabled segment uses, and
   the group registry macro.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segmentation.compiler import features as feature_models
from segmentation.compiler import group_registry
from segmentation.language import gating, groups, references
from segmentation.language.activity import Feature
from segmentation.language.issues import Issues
from segmentation.language.model import Segment


@dataclass
class ActivityPlan:
    segments: list[Segment]  # with in_segment sources filled, in dependency order
    issues: Issues
    gating: gating.GatingResult
    groups: list[groups.PriorityGroup] = field(default_factory=list)
    features: dict[str, list[Feature]] = field(default_factory=dict)

    def warnings(self) -> list[str]:
        return self.gating.warnings()

    def payload(self, seg: Segment) -> dict[str, Any]:
        """Extra keys for a segment's model payload: feature joins and package gating."""
        objects = sorted({h.feature.object for h in feature_models.iter_has(seg.condition)})
        return {
            "activity_objects": objects,
            "packages": gating.template_packages(seg, self.gating),
        }


def plan(
    segments: list[Segment],
    group_roots: Iterable[Path] | Path | None,
    packages: Mapping[str, str | None] | None,
    display: Callable[[Path], str] = str,
    exclude: Collection[str] = (),
) -> ActivityPlan:
    """Cross-check a validated set. `group_roots`: segment_defs-like folders whose
    <account>/_groups/*.yml are read; `packages`: account -> package (None: offline)."""
    resolution = references.resolve(segments)
    issues = Issues()
    issues.extend(resolution.issues)
    gate = gating.check(resolution.segments, packages, resolution.edges)
    issues.extend(gate.issues)
    loaded: list[groups.PriorityGroup] = []
    roots = [group_roots] if isinstance(group_roots, Path) else list(group_roots or [])
    for root in roots:
        if root.is_dir():
            found, group_issues = groups.load_groups(root, display, exclude)
            loaded += found
            issues.extend(group_issues)
    groups.check_members(loaded, resolution.segments, issues, gate.skipped)
    enabled = [s for s in resolution.segments if s.enabled]
    feats = feature_models.collect_features(s.condition for s in enabled)
    return ActivityPlan(resolution.segments, issues, gate, loaded, feats)


def render(project: Path, activity_plan: ActivityPlan) -> list[Path]:
    written = feature_models.render_feature_models(project, activity_plan.features)
    written.append(group_registry.render_groups(project, activity_plan.groups))
    return written
