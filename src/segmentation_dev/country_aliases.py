"""Write the dbt macro `country_aliases()` (macros/staging/country_aliases.sql) from the one
alias table, seeds/country_aliases.csv, so staging's `normalize_country` and the Python twin
(segmentation.language.normalize) read the same data. After editing the CSV:

    .venv/bin/python -m segmentation_dev.country_aliases

tests/unit/test_normalize.py fails while the committed macro differs from what this writes.
"""

from __future__ import annotations

from pathlib import Path

from segmentation import settings
from segmentation.language.normalize import parse_country_aliases

CSV = Path("seeds/country_aliases.csv")
MACRO = Path("macros/staging/country_aliases.sql")
PER_LINE = 4

HEADER = """\
{#- GENERATED from seeds/country_aliases.csv by `python -m segmentation_dev.country_aliases`:
    edit the CSV, then run that. Country spelling (as normalize_country keys it: lower case,
    non-alphanumerics one space) -> ISO 3166-1 alpha-2 code. -#}
{% macro country_aliases() -%}
    {{ return({
"""
FOOTER = """\
    }) }}
{%- endmacro %}
"""


def render(aliases: dict[str, str]) -> str:
    """The macro file for `aliases` (validated by parse_country_aliases: no quote can occur)."""
    items = [f"'{alias}': '{code}'," for alias, code in sorted(aliases.items())]
    lines = ["        " + " ".join(items[i : i + PER_LINE]) for i in range(0, len(items), PER_LINE)]
    return HEADER + "\n".join(lines) + "\n" + FOOTER


def expected(project: Path | None = None) -> str:
    root = project or settings.project_dir()
    text = (root / CSV).read_text(encoding="utf-8")
    return render(parse_country_aliases(text, str(CSV)))


def write(project: Path | None = None) -> Path:
    root = project or settings.project_dir()
    (root / MACRO).write_text(expected(root), encoding="utf-8")
    return root / MACRO


if __name__ == "__main__":
    print(write())
