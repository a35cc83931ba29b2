"""Include/exclude regex lists, as every name filter of zferry uses them.

A name is selected when it fully matches at least one include pattern (or there are no
include patterns) and fully matches no exclude pattern: exclude wins. A pattern that starts
with `!` matches the names that the rest of it does not match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from zferry.errors import UsageError


@dataclass(frozen=True)
class Pattern:
    regex: re.Pattern[str]
    negated: bool

    def matches(self, name: str) -> bool:
        return (self.regex.fullmatch(name) is not None) != self.negated


def compile_patterns(patterns: Iterable[str], option: str) -> tuple[Pattern, ...]:
    """Compile user regexes, naming the option in the error if one is invalid."""
    compiled = []
    for text in patterns:
        negated = text.startswith("!")
        body = text[1:] if negated else text
        try:
            compiled.append(Pattern(re.compile(body), negated))
        except re.error as exc:
            raise UsageError(f"{option}: invalid regular expression {text!r}: {exc}") from None
    return tuple(compiled)


@dataclass(frozen=True)
class NameFilter:
    """Include and exclude patterns; see the module docstring for the rule."""

    include: tuple[Pattern, ...] = ()
    exclude: tuple[Pattern, ...] = ()

    def accepts(self, name: str) -> bool:
        if any(p.matches(name) for p in self.exclude):
            return False
        return not self.include or any(p.matches(name) for p in self.include)

    @staticmethod
    def build(include: Sequence[str], exclude: Sequence[str], option: str) -> NameFilter:
        return NameFilter(
            compile_patterns(include, f"--include-{option}-regex"),
            compile_patterns(exclude, f"--exclude-{option}-regex"),
        )
