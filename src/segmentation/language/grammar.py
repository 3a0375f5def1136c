"""Every node kind of the language and its parser, in one explicit table.

validate.py parses conditions and all/any/not; activity.py parses `has` and `in_segment`.
To add a node kind, write its parser and add it here (nothing registers by import).
"""

from __future__ import annotations

from pathlib import Path

from segmentation.language import activity, validate
from segmentation.language.catalogue import CATALOGUE, Catalogue
from segmentation.language.issues import Issues
from segmentation.language.loader import load_yaml
from segmentation.language.model import Segment
from segmentation.language.regex import RegexCheck, offline_regex_check

NODE_PARSERS: dict[str, validate.NodeParser] = {
    **validate.CORE_NODE_PARSERS,
    "has": activity.parse_has,
    "in_segment": activity.parse_in_segment,
}


def parse_text(
    text: str,
    file: str,
    path: Path,
    account_dir: str,
    catalogue: Catalogue = CATALOGUE,
    regex_check: RegexCheck = offline_regex_check,
) -> tuple[Segment | None, Issues]:
    """Validate one definition file's text: the Segment (None on any error) and the issues."""
    data, issues = load_yaml(text, file)
    if data is None:
        return None, issues
    parser = validate.Parser(file, issues, catalogue, regex_check, NODE_PARSERS)
    segment = parser.segment(data, path, account_dir)
    return (segment if not issues else None), issues
