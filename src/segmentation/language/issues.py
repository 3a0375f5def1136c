"""Source locations and the error collector shared by the loader and the validator."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Loc:
    """A position in a definition file; line and column are 1-based, as editors show them."""

    file: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, order=True)
class Issue:
    loc: Loc
    message: str

    def __str__(self) -> str:
        return f"{self.loc}: {self.message}"


@dataclass
class Issues:
    """Collects every problem instead of stopping at the first one."""

    items: list[Issue] = field(default_factory=list)

    def add(self, loc: Loc, message: str) -> None:
        self.items.append(Issue(loc, message))

    def extend(self, other: Issues) -> None:
        self.items.extend(other.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def sorted(self) -> list[Issue]:
        return sorted(set(self.items))
