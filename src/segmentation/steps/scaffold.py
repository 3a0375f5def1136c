"""`segments init <account>/<key>`: a new, commented definition file that validates as it
is, with the schema modeline editors read for completion. It never overwrites a file."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from segmentation.compiler import sources
from segmentation.errors import ScaffoldError
from segmentation.language.model import TEMPLATE_DIR
from segmentation.language.schema import SCHEMA_FILE
from segmentation.language.suggest import did_you_mean
from segmentation.language.validate import ACCOUNT_PATTERN, KEY_PATTERN
from segmentation.warehouse import catalog

log = logging.getLogger(__name__)

HEADER = """\
# yaml-language-server: $schema={schema}
# A segment definition: docs/authoring.md (tutorial, every field and operator).
# Check it: segments validate {path}
# Try it:   segments preview {target}
"""
# (line, comment): the comments line up in one column.
BODY = (
    ("key: {key}", "snake_case; must equal the file name"),
    ("name: {name}", "what Broadcast users see"),
    ("description: Customers who agreed to WhatsApp messages", ""),
    ("account: {account}", "{account_comment}"),
    ("owner: growth-team", "the team that answers for it"),
    ("visibility: team", "private | team | everyone"),
    ("tags: [draft]", ""),
    ("enabled: true", "false: catalogued, not built"),
    ("expect:", "bounds the audit checks before publishing"),
    ("  min_members: 0", ""),
    ("  max_change_pct: 100", ""),
    ("where:", "all: (and), any: (or), not:; a condition is field/op/value"),
    ("  all:", ""),
    ("    - {{field: lifecycle_stage, op: eq, value: customer}}", ""),
    ("    - {{field: consent_whatsapp, op: is_true}}", ""),
    ("# exclude:", "members = where AND NOT exclude"),
    ("#   {{field: tags, op: contains_any, value: [do_not_contact]}}", ""),
)
COMMENT_COLUMN = 32


def render(**values: str) -> str:
    """The scaffold's text for `values` (key, name, account, ...)."""
    lines = [HEADER.format(**values).rstrip("\n")]
    for line, comment in BODY:
        text, note = line.format(**values), comment.format(**values)
        lines.append(f"{text:<{COMMENT_COLUMN - 1}} # {note}" if note else text)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Scaffold:
    path: Path  # the file written
    display: str  # as the validator names it (relative to the project)
    target: str  # <account>/<key>
    overrides_template: bool  # an account file with a template's key replaces it there


def scaffold(target: str, *, offline: bool = False) -> Scaffold:
    """Write segment_defs/<account>/<key>.yml (segment_defs/_all/ for `_all/<key>`)."""
    account, _, key = target.strip().partition("/")
    if not account or not key or "/" in key:
        raise ScaffoldError(
            f"'{target}' is not a segment name: write <account>/<key>, e.g. acme/vip_customers "
            f"(a template for every account: {TEMPLATE_DIR}/<key>)"
        )
    key = key.removesuffix(".yml")
    if not KEY_PATTERN.fullmatch(key):
        raise ScaffoldError(
            f"key '{key}' must be snake_case: a lower-case letter, then lower-case letters, "
            "digits or underscores (at most 48 characters), e.g. vip_customers"
        )
    template = account in (TEMPLATE_DIR, "*")
    if not template:
        if not ACCOUNT_PATTERN.fullmatch(account):
            raise ScaffoldError(
                f"account '{account}' is not a valid account id (letters, digits, '_' and '-')"
            )
        _check_account(account, offline)
    folder = sources.defs_dir() / (TEMPLATE_DIR if template else account)
    path = folder / f"{key}.yml"
    display = sources.display_path(path)
    if path.exists():
        raise ScaffoldError(f"{display} already exists: edit it, or pick another key")
    # The modeline is relative to the file: segment_defs/<folder>/ -> segment_defs/.
    schema = f"../{Path(SCHEMA_FILE).name}"
    text = render(
        schema=schema,
        path=display,
        target=f"{TEMPLATE_DIR if template else account}/{key}",
        key=key,
        name=key.replace("_", " ").capitalize(),
        account='"*"' if template else account,
        account_comment=(
            "a template: built for every account" if template else "the folder's account id"
        ),
    )
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x", encoding="utf-8") as handle:  # "x": never overwrite, even racing
            handle.write(text)
    except FileExistsError as exc:
        raise ScaffoldError(f"{display} already exists: edit it, or pick another key") from exc
    overrides = not template and (sources.defs_dir() / TEMPLATE_DIR / f"{key}.yml").is_file()
    log.info("wrote %s", display)
    return Scaffold(path, display, f"{account}/{key}", overrides)


def _check_account(account: str, offline: bool) -> None:
    """A new account folder must name an account the warehouse has (when it is reachable)."""
    if (sources.defs_dir() / account).is_dir():
        return
    with catalog.warehouse_view(offline) as (accounts, _check):
        known = None if accounts is None else sorted(accounts)
    if known is not None and account not in known:
        raise ScaffoldError(
            f"unknown account '{account}' in the warehouse (crm_raw.accounts)"
            f"{did_you_mean(account, known)}: definitions live in segment_defs/<account_id>/"
        )
