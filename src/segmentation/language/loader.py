"""YAML loading that keeps line:col for every key and value and rejects duplicate keys.

PyYAML's SafeLoader silently keeps the last of two equal mapping keys and forgets where
values came from. Here the document is composed into nodes by a SafeLoader, then converted
by hand into `MarkedDict` / `MarkedList` containers that remember each entry's position, so
any later error can point at the exact line and column.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from segmentation.language.issues import Issues, Loc

MAX_DEPTH = 64  # deeper documents are certainly a mistake
MAX_BYTES = 256 * 1024  # a definition is a few hundred bytes; this bounds what is parsed


class AliasError(yaml.MarkedYAMLError):
    """An alias (*name) in a definition: refused, so a few bytes can't expand to gigabytes."""


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """Why a string from YAML cannot reach the database or the generated files, or None.

    PostgreSQL text holds no NUL, and a lone UTF-16 surrogate (YAML's "\\ud83d" escape) is
    not a character: it can't be encoded as UTF-8 for the generated files or the database.
    """
    if "\x00" in text:
        return "contains a NUL character"
    for i, ch in enumerate(text):
        if 0xD800 <= ord(ch) <= 0xDFFF:
            pair = text[i : i + 2]
            if len(pair) == 2 and ord(pair[0]) <= 0xDBFF and 0xDC00 <= ord(pair[1]) <= 0xDFFF:
                char = pair.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
                return (
                    f"contains the UTF-16 surrogate pair \\u{ord(pair[0]):04x}\\u{ord(pair[1]):04x}"
                    f" (JSON-style escape): write the character itself ({char}) or "
                    f"\\U{ord(char):08X}"
                )
            return f"contains a lone UTF-16 surrogate \\u{ord(ch):04x}, which is not a character"
    return None


class MarkedDict(dict):
    """A mapping that knows where it, each key and each value start."""

    def __init__(self, loc: Loc) -> None:
        super().__init__()
        self.loc = loc
        self.key_locs: dict[Any, Loc] = {}
        self.value_locs: dict[Any, Loc] = {}

    def key_loc(self, key: Any) -> Loc:
        return self.key_locs.get(key, self.loc)

    def value_loc(self, key: Any) -> Loc:
        return self.value_locs.get(key, self.key_loc(key))


class MarkedList(list):
    """A sequence that knows where it and each item start."""

    def __init__(self, loc: Loc) -> None:
        super().__init__()
        self.loc = loc
        self.item_locs: list[Loc] = []

    def item_loc(self, index: int) -> Loc:
        return self.item_locs[index] if 0 <= index < len(self.item_locs) else self.loc


def loc_of(value: Any, default: Loc) -> Loc:
    """Where a container starts, or `default` for scalars (their parent knows)."""
    return getattr(value, "loc", default)


class DefinitionLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false. YAML 1.1 also reads on/off/yes/no
    as booleans, which would turn `op: on` (the date operator) into `op: true`."""


def _refuse_alias(loader: DefinitionLoader, parent: Any, index: Any) -> yaml.Node:
    if loader.check_event(yaml.AliasEvent):
        event = loader.peek_event()
        raise AliasError(
            None,
            None,
            f"YAML aliases (*{event.anchor}) are not supported in definitions: "
            "write the value out where it is used",
            event.start_mark,
        )
    return yaml.SafeLoader.compose_node(loader, parent, index)


DefinitionLoader.compose_node = _refuse_alias  # type: ignore[assignment,method-assign]

DefinitionLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
DefinitionLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _loc(file: str, node: yaml.Node) -> Loc:
    mark = node.start_mark
    return Loc(file, mark.line + 1, mark.column + 1)


class _Converter:
    def __init__(self, file: str, loader: DefinitionLoader, issues: Issues) -> None:
        self.file = file
        self.loader = loader
        self.issues = issues

    def convert(self, node: yaml.Node, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            self.issues.add(_loc(self.file, node), f"nesting deeper than {MAX_DEPTH} levels")
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, depth)
        if isinstance(node, yaml.SequenceNode):
            out = MarkedList(_loc(self.file, node))
            for item in node.value:
                out.append(self.convert(item, depth + 1))
                out.item_locs.append(_loc(self.file, item))
            return out
        try:
            value = self.loader.construct_object(node, deep=True)
        except ValueError:
            # Looks like a date but isn't one (2024-13-01), or an integer too long for
            # Python's int(): keep the text, so validation reports it where it's used.
            value = str(node.value)
        return self._checked(value, node)

    def _checked(self, value: Any, node: yaml.Node) -> Any:
        """`value`, or for text that can't be stored, an error and a placeholder copy (so
        the same spot isn't reported again as missing or mistyped)."""
        problem = text_problem(value) if isinstance(value, str) else None
        if problem is None:
            return value
        self.issues.add(_loc(self.file, node), f"this text {problem}")
        return _UNSTORABLE.sub("\ufffd", value)

    def _mapping(self, node: yaml.MappingNode, depth: int) -> MarkedDict:
        out = MarkedDict(_loc(self.file, node))
        for key_node, value_node in node.value:
            key_loc = _loc(self.file, key_node)
            if not isinstance(key_node, yaml.ScalarNode):
                self.issues.add(key_loc, "a mapping key must be a plain name")
                continue
            key = self._checked(self.loader.construct_object(key_node, deep=True), key_node)
            if key == "<<" and key_node.tag == "tag:yaml.org,2002:merge":
                self.issues.add(key_loc, "YAML merge keys ('<<') are not supported")
                continue
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                first = out.key_loc(key)
                self.issues.add(
                    key_loc, f"duplicate key '{key}' (first defined at line {first.line})"
                )
                continue
            out[key] = self.convert(value_node, depth + 1)
            out.key_locs[key] = key_loc
            out.value_locs[key] = _loc(self.file, value_node)
        return out


def load_yaml(text: str, file: str) -> tuple[Any, Issues]:
    """Parse one YAML document. Returns (data, issues); data is None on a syntax error."""
    issues = Issues()
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        issues.add(Loc(file, 1, 1), f"the file is larger than {MAX_BYTES // 1024} KiB")
        return None, issues
    loader = DefinitionLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            issues.add(Loc(file, 1, 1), "the file is empty")
            return None, issues
        return _Converter(file, loader, issues).convert(node), issues
    except AliasError as exc:
        mark = exc.problem_mark
        assert mark is not None
        issues.add(Loc(file, mark.line + 1, mark.column + 1), str(exc.problem))
        return None, issues
    except RecursionError:
        issues.add(Loc(file, 1, 1), f"nesting deeper than {MAX_DEPTH} levels")
        return None, issues
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Loc(file, mark.line + 1, mark.column + 1) if mark else Loc(file)
        problem = exc.problem or "invalid YAML"
        context = f" {exc.context}" if exc.context else ""
        issues.add(loc, f"YAML syntax error: {problem}{context}")
        return None, issues
    except yaml.YAMLError as exc:
        issues.add(Loc(file), f"YAML error: {exc}")
        return None, issues
    finally:
        loader.dispose()
