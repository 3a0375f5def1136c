"""Priority groups: mutually exclusive assignment of contacts to segments.

```yaml
# segment_defs/<account_id>/_groups/lifecycle.yml
group: lifecycle
exclusive: true
order: [champions, loyal_customers, at_risk, hibernating]   # first match wins
fallback: other                                              # optional
```
A contact is assigned to the first segment in `order` it is a member of; with `fallback`,
contacts matching none are assigned to that label, so the group is collectively exhaustive.
A group under `segment_defs/_all/_groups/` is a template group (account "*"): it applies to
every account that has no group of the same key of its own, and its order may list only
templates (segment_defs/_all/), so a new account gets it on day one (the shipped RFM group).
The compiler renders them into the macro `segment_group_registry()` (like the segment
registry; compiler/group_registry.py); the model `int_group_entries` expands template groups
per account, and `int_group_catalogue` and `segment_group_assignments` read it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segmentation.language.issues import Issues, Loc
from segmentation.language.loader import MarkedDict, MarkedList, load_yaml
from segmentation.language.model import TEMPLATE_ACCOUNT, TEMPLATE_DIR, Segment
from segmentation.language.suggest import did_you_mean
from segmentation.language.validate import ACCOUNT_PATTERN, KEY_PATTERN, type_name

GROUPS_DIR = "_groups"
GROUP_KEYS = ("group", "name", "description", "exclusive", "order", "fallback")


@dataclass(frozen=True)
class PriorityGroup:
    key: str
    account: str
    order: tuple[str, ...]
    fallback: str | None
    name: str
    description: str
    source_file: str
    loc: Loc = field(compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.key,
            "account": self.account,
            "exclusive": True,
            "order": list(self.order),
            "fallback": self.fallback,
        }

    @property
    def definition_hash(self) -> str:
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def discover(defs_dir: Path) -> list[Path]:
    return sorted(
        p
        for p in defs_dir.glob(f"*/{GROUPS_DIR}/*")
        if p.is_file() and p.suffix in (".yml", ".yaml")
    )


def parse_group(
    text: str, file: str, path: Path, account: str, issues: Issues
) -> PriorityGroup | None:
    data, load_issues = load_yaml(text, file)
    issues.extend(load_issues)
    if data is None:
        return None
    if not isinstance(data, MarkedDict):
        issues.add(Loc(file), f"a group definition must be a mapping, got {type_name(data)}")
        return None
    ok = True
    for key in data:
        if key not in GROUP_KEYS:
            issues.add(
                data.key_loc(key), f"unknown key '{key}' in a group{did_you_mean(key, GROUP_KEYS)}"
            )
            ok = False
    for key in ("group", "order"):
        if key not in data:
            issues.add(data.loc, f"missing required key '{key}' in a group")
            ok = False
    if not ok:
        return None
    key = data["group"]
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        issues.add(data.value_loc("group"), f"group must be a snake_case name, got {key!r}")
        return None
    if key != path.stem:
        issues.add(
            data.value_loc("group"), f"group '{key}' does not match the file name '{path.name}'"
        )
        return None
    if data.get("exclusive", True) is not True:
        issues.add(
            data.value_loc("exclusive"),
            "only exclusive groups are supported (exclusive: true): a contact lands in the "
            "first segment of 'order' it matches",
        )
        return None
    order = data["order"]
    if not isinstance(order, MarkedList) or not order:
        issues.add(data.value_loc("order"), "order must be a non-empty list of segment keys")
        return None
    keys: list[str] = []
    for i, item in enumerate(order):
        if not isinstance(item, str) or not KEY_PATTERN.fullmatch(item):
            issues.add(order.item_loc(i), f"order: {item!r} is not a segment key")
            ok = False
        elif item in keys:
            issues.add(order.item_loc(i), f"order: '{item}' is listed twice")
            ok = False
        else:
            keys.append(item)
    fallback = data.get("fallback")
    if fallback is not None:
        if not isinstance(fallback, str) or not KEY_PATTERN.fullmatch(fallback):
            issues.add(
                data.value_loc("fallback"), f"fallback must be a snake_case label, got {fallback!r}"
            )
            ok = False
        elif fallback in keys:
            issues.add(
                data.value_loc("fallback"),
                f"fallback '{fallback}' is also in order; use a label of its own (e.g. 'other')",
            )
            ok = False
    name = data.get("name", key)
    description = data.get("description", "")
    if not isinstance(name, str) or not isinstance(description, str):
        issues.add(data.loc, "name and description must be text")
        ok = False
    if not ok:
        return None
    return PriorityGroup(key, account, tuple(keys), fallback, name, description, file, data.loc)


def check_members(
    groups: Iterable[PriorityGroup],
    segments: Iterable[Segment],
    issues: Issues,
    skipped_templates: dict[str, list[str]] | None = None,
) -> None:
    """Every ordered key must be an enabled segment built for the group's account."""
    segments = list(segments)
    skipped_templates = skipped_templates or {}
    for group in groups:
        template_group = group.account == TEMPLATE_ACCOUNT
        local = {} if template_group else {s.key: s for s in segments if s.account == group.account}
        templates = {s.key: s for s in segments if s.account == TEMPLATE_ACCOUNT}
        for key in group.order:
            seg = local.get(key) or templates.get(key)
            if seg is None:
                known = sorted({*local, *templates})
                where = (
                    f"template group (segment_defs/{TEMPLATE_DIR}/{GROUPS_DIR}/): unknown "
                    f"template '{key}'; a template group may only list templates "
                    f"(segment_defs/{TEMPLATE_DIR}/)"
                    if template_group
                    else f"unknown segment '{key}' for account '{group.account}'"
                )
                issues.add(group.loc, f"group '{group.key}': {where}{did_you_mean(key, known)}")
            elif template_group and skipped_templates.get(key):
                issues.add(
                    group.loc,
                    f"group '{group.key}': template '{key}' is not built for account(s) "
                    f"{', '.join(skipped_templates[key])} (its package does not include "
                    "activity conditions), so this template group cannot list it",
                )
            elif not seg.enabled:
                issues.add(
                    group.loc,
                    f"group '{group.key}': segment '{key}' is disabled ({seg.source_file})",
                )
            elif seg.is_template and group.account in skipped_templates.get(key, []):
                issues.add(
                    group.loc,
                    f"group '{group.key}': template '{key}' is not built for account "
                    f"'{group.account}' (its package does not include activity conditions)",
                )
        fallback = group.fallback
        if fallback and (fallback in local or fallback in templates):
            issues.add(
                group.loc,
                f"group '{group.key}': fallback '{fallback}' is also a segment key; pick a "
                "label that is not a segment",
            )


def load_groups(
    defs_dir: Path, display: Any = str, exclude: Collection[str] = ()
) -> tuple[list[PriorityGroup], Issues]:
    """The groups under `defs_dir`; `exclude`: accounts whose groups are left out."""
    issues = Issues()
    groups: list[PriorityGroup] = []
    for path in discover(defs_dir):
        account = path.parent.parent.name
        if account in exclude:
            continue
        file = display(path)
        if account == TEMPLATE_DIR:
            account = TEMPLATE_ACCOUNT
        elif account.startswith("_") or not ACCOUNT_PATTERN.fullmatch(account):
            issues.add(
                Loc(file),
                f"groups belong to an account: segment_defs/<account>/{GROUPS_DIR}/ (or, "
                f"for every account, segment_defs/{TEMPLATE_DIR}/{GROUPS_DIR}/)",
            )
            continue
        group = parse_group(path.read_text(encoding="utf-8"), file, path, account, issues)
        if group is not None:
            groups.append(group)
    return groups, issues
