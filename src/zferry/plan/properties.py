"""Which properties a receive sets (`-o`) or ignores (`-x`): pure rules over the source's properties.

- `--preserve-properties P ...`: always `-x P`, so a source (perhaps compromised) cannot set
  e.g. mountpoint, canmount, exec or sharenfs on the destination.
- `--zfs-recv-o-include-regex`: source properties whose source (`local`, `inherited`, ...) is in
  `o_sources` and whose name matches are set explicitly with `-o name=value`.
- `--zfs-recv-x-include-regex`: matching source properties are excluded with `-x name`.
Each rule applies to the receives named in its targets: `full`, `incremental` or both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from zferry.errors import UsageError
from zferry.select.regex import NameFilter

# Properties that would change what the received dataset is, or cannot be set by receive.
NEVER_SET = frozenset(
    {
        "type",
        "guid",
        "createtxg",
        "creation",
        "used",
        "available",
        "referenced",
        "encryption",
        "keyformat",
        "keylocation",
        "pbkdf2iters",
        "encryptionroot",
        "keystatus",
        "volsize",
        "origin",
        "snapshots_changed",
        "receive_resume_token",
    }
)

PropertyValues = Mapping[str, tuple[str, str]]  # name -> (value, source)


@dataclass(frozen=True)
class PropertyRule:
    names: NameFilter
    sources: frozenset[str] = frozenset({"local"})
    targets: frozenset[str] = frozenset({"full"})

    @property
    def active(self) -> bool:
        return bool(self.names.include)

    def chosen(self, props: PropertyValues, full: bool) -> list[str]:
        if not self.active or ("full" if full else "incremental") not in self.targets:
            return []
        return sorted(
            name
            for name, (_, source) in props.items()
            if name not in NEVER_SET and _source_kind(source) in self.sources and self.names.accepts(name)
        )


@dataclass(frozen=True)
class PropertyRules:
    preserve: tuple[str, ...] = ()
    set_rule: PropertyRule = PropertyRule(NameFilter())
    exclude_rule: PropertyRule = PropertyRule(NameFilter(), targets=frozenset({"full", "incremental"}))

    @property
    def needs_source_properties(self) -> bool:
        return self.set_rule.active or self.exclude_rule.active

    def receive_options(self, props: PropertyValues, full: bool) -> list[str]:
        """`-o name=value` and `-x name` options for one receive."""
        excluded = list(dict.fromkeys([*self.preserve, *self.exclude_rule.chosen(props, full)]))
        options: list[str] = []
        for name in self.set_rule.chosen(props, full):
            if name not in excluded:
                options += ["-o", f"{name}={props[name][0]}"]
        for name in excluded:
            options += ["-x", name]
        return options


def _source_kind(source: str) -> str:
    """`inherited from pool/x` -> `inherited`; `local`, `default`, `received`, `-` stay as they are."""
    return source.split(" ", 1)[0]


def parse_targets(text: str, option: str) -> frozenset[str]:
    parts = frozenset(text.split("+"))
    if not parts <= {"full", "incremental"}:
        raise UsageError(f"{option}: {text!r} should be full, incremental or full+incremental")
    return parts


def parse_sources(text: str, option: str) -> frozenset[str]:
    parts = frozenset(p.strip() for p in text.split(","))
    allowed = {"local", "inherited", "received", "default", "temporary", "-"}
    if not parts <= allowed:
        raise UsageError(f"{option}: {text!r} should be a comma list of {', '.join(sorted(allowed))}")
    return parts


def check_property_names(names: Sequence[str], option: str) -> tuple[str, ...]:
    for name in names:
        if not re.fullmatch(r"[a-z][a-z0-9_]*|[a-z0-9_.\-]+:[A-Za-z0-9_.:\-]+", name):
            raise UsageError(f"{option}: {name!r} is not a ZFS property name")
    return tuple(names)
