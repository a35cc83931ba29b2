"""Which datasets of a source tree take part: recursion, name filters, an exclude property.

Names are matched relative to the root of the pair: for root `tank/data`, the dataset
`tank/data/project/temp` is matched as `project/temp`, and the root itself as `` (empty).
Absolute `--include/--exclude-dataset` names are made relative once per pair (`relative_to`),
so the source and the destination tree select the same datasets.
An excluded dataset takes its whole subtree with it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Optional

from zferry.errors import UsageError
from zferry.select.regex import NameFilter, compile_patterns

EXCLUDE_PROPERTY_VALUES = ("true", "on", "yes", "1")


@dataclass(frozen=True)
class DatasetFilter:
    names: NameFilter = NameFilter()
    exclude_property: Optional[str] = None
    include_datasets: tuple[str, ...] = ()  # whole subtrees, by relative or absolute name
    exclude_datasets: tuple[str, ...] = ()

    @staticmethod
    def build(
        include_regex: Sequence[str] = (),
        exclude_regex: Sequence[str] = (),
        include_datasets: Sequence[str] = (),
        exclude_datasets: Sequence[str] = (),
        exclude_property: Optional[str] = None,
    ) -> DatasetFilter:
        """Combine `--include/--exclude-dataset[-regex]` options into one filter."""
        include = list(compile_patterns(include_regex, "--include-dataset-regex"))
        exclude = list(compile_patterns(exclude_regex, "--exclude-dataset-regex"))
        if exclude_property is not None and not re.fullmatch(r"[a-z0-9_.\-]+:[A-Za-z0-9_.:\-]+", exclude_property):
            raise UsageError(
                f"--exclude-dataset-property {exclude_property!r}: give a user property name such as com.corp:no_backup"
            )
        return DatasetFilter(
            NameFilter(tuple(include), tuple(exclude)),
            exclude_property,
            tuple(d.strip("/") for d in include_datasets),
            tuple(d.strip("/") for d in exclude_datasets),
        )

    def relative_to(self, root: str) -> DatasetFilter:
        """This filter with `--include/--exclude-dataset` names under `root` made relative to it, so
        that the destination tree (another root) sees the same selection. Other names stay as given:
        they are relative names already."""

        def relative(name: str) -> str:
            return "" if name == root else name[len(root) + 1 :] if name.startswith(root + "/") else name

        return replace(
            self,
            include_datasets=tuple(relative(n) for n in self.include_datasets),
            exclude_datasets=tuple(relative(n) for n in self.exclude_datasets),
        )

    def select(
        self,
        root: str,
        datasets: Sequence[str],
        props: Optional[dict[str, dict[str, str]]] = None,
        recursive: bool = True,
    ) -> list[str]:
        """The selected names among `datasets` (all under `root`), sorted parents first."""
        ordered = sorted(d for d in datasets if d == root or (recursive and d.startswith(root + "/")))
        excluded_roots: list[str] = []
        chosen: list[str] = []
        for name in ordered:
            if any(name == x or name.startswith(x + "/") for x in excluded_roots):
                continue
            relative = "" if name == root else name[len(root) + 1 :]
            if self._excluded(name, relative, props):
                excluded_roots.append(name)
                continue
            if self._included(name, relative):
                chosen.append(name)
        return chosen

    def _included(self, name: str, relative: str) -> bool:
        if not self.names.include and not self.include_datasets:
            return True
        if any(_within(n, relative) for n in self.include_datasets):
            return True
        return any(p.matches(relative) for p in self.names.include)

    def _excluded(self, name: str, relative: str, props: Optional[dict[str, dict[str, str]]]) -> bool:
        if any(p.matches(relative) for p in self.names.exclude):
            return True
        if any(_within(n, relative) for n in self.exclude_datasets):
            return True
        if self.exclude_property and props is not None:
            value = props.get(name, {}).get(self.exclude_property, "-")
            return value.strip().lower() in EXCLUDE_PROPERTY_VALUES
        return False


def _within(given: str, relative: str) -> bool:
    """Is the dataset `relative` to the root `given` or below it? `given` '' is the root itself.

    Only relative names are compared (`DatasetFilter.relative_to` makes absolute ones relative):
    an absolute match would differ between the source and the destination tree.
    """
    return given == "" or relative == given or relative.startswith(given + "/")
