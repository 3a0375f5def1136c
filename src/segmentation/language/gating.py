"""Package gating: which accounts may use activity (`has:`) conditions.

`crm_raw.accounts.package` decides, through PACKAGE_FEATURES: 'plus' accounts get basic
attributes only, 'ultimate' and '360' get everything. A segment needs activity when it uses
`has:` itself or refers (through `in_segment`, transitively) to one that does.

- an account-scoped definition that needs activity, for an account not entitled: an error;
- a template that needs activity is built only for entitled accounts; the others are
  reported as skipped (a warning). `template_packages()` is the list render writes into the
  segment registry, from which the dbt model int_segment_scopes (the one place templates
  are expanded per account) builds the template only for accounts on those packages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from segmentation.language.activity import Has, uses_activity, walk
from segmentation.language.issues import Issues
from segmentation.language.model import Segment
from segmentation.language.references import NodeId, label, node_id

# The one table of Broadcast packages and the features each includes. Everything else is
# derived from it: the validation below, the package list render passes to dbt for each gated
# template (int_segment_scopes builds a template only for accounts on one of them), the
# staging picklist, and the demo and reference data.
PACKAGE_FEATURES: dict[str, frozenset[str]] = {
    "plus": frozenset(),
    "ultimate": frozenset({"activity"}),
    "360": frozenset({"activity"}),
}
PACKAGES = tuple(PACKAGE_FEATURES)
ACTIVITY = "activity"


def packages_with(feature: str) -> tuple[str, ...]:
    """The packages that include `feature`, in table order."""
    return tuple(p for p, features in PACKAGE_FEATURES.items() if feature in features)


ENTITLED_PACKAGES = packages_with(ACTIVITY)


@dataclass
class GatingResult:
    issues: Issues = field(default_factory=Issues)
    # template key -> accounts it is NOT built for (not entitled), for reporting
    skipped: dict[str, list[str]] = field(default_factory=dict)
    needs_activity: set[NodeId] = field(default_factory=set)

    def warnings(self) -> list[str]:
        """One line per skipped account, naming the templates it does not get."""
        by_account: dict[str, list[str]] = {}
        for key, accounts in sorted(self.skipped.items()):
            for account in accounts:
                by_account.setdefault(account, []).append(key)
        return [
            f"account '{account}' (package plus) skips {len(keys)} template"
            f"{'s' if len(keys) > 1 else ''} with activity conditions (has:, needs "
            f"{' or '.join(ENTITLED_PACKAGES)}): {', '.join(keys)}"
            for account, keys in sorted(by_account.items())
        ]


def needing_activity(
    segments: Iterable[Segment], edges: Mapping[NodeId, set[NodeId]]
) -> set[NodeId]:
    """Segments that use has: directly or through any chain of in_segment references."""
    segments = list(segments)
    direct = {node_id(s) for s in segments if uses_activity(s.where) or uses_activity(s.exclude)}
    needs = set(direct)
    changed = True
    while changed:
        changed = False
        for source, targets in edges.items():
            if source not in needs and targets & needs:
                needs.add(source)
                changed = True
    return needs


def check(
    segments: Iterable[Segment],
    packages: Mapping[str, str | None] | None,
    edges: Mapping[NodeId, set[NodeId]],
) -> GatingResult:
    """`packages` maps account_id -> package (None when the database is not reachable)."""
    segments = list(segments)
    result = GatingResult(needs_activity=needing_activity(segments, edges))
    if packages is None:
        return result
    for seg in segments:
        if not seg.enabled or node_id(seg) not in result.needs_activity:
            continue
        if seg.is_template:
            overridden = {s.account for s in segments if s.key == seg.key and not s.is_template}
            result.skipped[seg.key] = sorted(
                a for a, p in packages.items() if p not in ENTITLED_PACKAGES and a not in overridden
            )
            continue
        package = packages.get(seg.account)
        if package in ENTITLED_PACKAGES or seg.account not in packages:
            continue  # an unknown account is reported by the account check
        has_nodes = [n for n in walk(seg.where) + walk(seg.exclude) if isinstance(n, Has)]
        loc = has_nodes[0].loc if has_nodes else seg.loc
        how = "uses has:" if has_nodes else "refers (in_segment) to a segment that uses has:"
        result.issues.add(
            loc,
            f"segment {label(node_id(seg))} {how} (activity conditions), but account "
            f"'{seg.account}' is on package '{package or 'unknown'}': activity conditions need "
            f"package {' or '.join(ENTITLED_PACKAGES)}",
        )
    return result


def template_packages(seg: Segment, result: GatingResult) -> list[str] | None:
    """Packages a template is built for: None means every account."""
    if seg.is_template and node_id(seg) in result.needs_activity:
        return list(ENTITLED_PACKAGES)
    return None
