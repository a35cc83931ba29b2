"""The DR site file (TOML): groups of one dataset tree kept on several sites, checked before anything runs.

```toml
[groups.db]
recursive = true
primary = "east"                       # the initial primary; afterwards the sites' own state decides
[groups.db.sites]
east = "root@db-east:tank/db"          # [[user@]host:]dataset
west = {dataset = "root@db-west:tank/db", ssh_config_file = "/etc/zferry/ssh_config"}
[groups.db.options]
extra_args = ["--ssh-dst-config-file", "/etc/zferry/ssh_config"]
```

Parsing and checking are pure (`parse`); `load` reads the file. Every name goes through zferry's
validators, and each group's `extra_args` through zferry's own parser (`replication_argv`).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional, cast

from zferry import validate
from zferry.errors import UsageError
from zferry.exec.ssh import check_file
from zferry.model import Endpoint

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_GROUP_KEYS = frozenset({"recursive", "primary", "sites", "options"})
_SITE_KEYS = frozenset({"dataset", "ssh_config_file", "ssh_private_key"})
_OPTION_KEYS = frozenset({"extra_args"})
# DR resolves divergence itself (preserving data aside); these would make zferry overwrite a site.
_FORBIDDEN_ARGS = ("--force", "--force-rollback-to-latest-snapshot", "--force-rollback-to-latest-common-snapshot")


@dataclass(frozen=True)
class Site:
    """One site of a group: where its copy of the tree lives and how to reach it."""

    name: str
    endpoint: Endpoint
    ssh_config_file: Optional[str] = None
    ssh_private_key: Optional[str] = None

    @property
    def root(self) -> str:
        return self.endpoint.dataset


@dataclass(frozen=True)
class Group:
    """A DR group: one dataset tree on several sites, one of them primary at a time."""

    name: str
    primary: str  # the initial primary (before any site carries DR state)
    sites: tuple[Site, ...]
    recursive: bool = False
    extra_args: tuple[str, ...] = ()

    def site(self, name: str) -> Site:
        """The site called `name`, or a usage error naming the sites there are."""
        for site in self.sites:
            if site.name == name:
                return site
        raise UsageError(f"group {self.name} has no site {name!r}; its sites: {', '.join(s.name for s in self.sites)}")


@dataclass(frozen=True)
class DrConfig:
    groups: tuple[Group, ...]

    def group(self, name: str) -> Group:
        """The group called `name`, or a usage error naming the groups there are."""
        for group in self.groups:
            if group.name == name:
                return group
        raise UsageError(f"no group {name!r} in the site file; its groups: {', '.join(g.name for g in self.groups)}")

    def selected(self, name: Optional[str]) -> tuple[Group, ...]:
        """Every group, or only `name`."""
        return self.groups if name is None else (self.group(name),)


def toml_loads() -> Callable[[str], dict[str, Any]]:
    """`tomllib.loads` (Python 3.11+) or `tomli.loads`; a clear error when neither is there."""
    for module_name in ("tomllib", "tomli"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        return cast(Callable[[str], dict[str, Any]], module.loads)
    raise UsageError("reading the site file needs Python 3.11 or the tomli package: pip install 'zferry[dr]'")


def load(path: str, check_argv: Optional[Callable[[Sequence[str]], object]] = None) -> DrConfig:
    """Read and check the site file at `path` (see `parse`)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise UsageError(f"cannot read the site file {path!r}: {error.strerror}") from None
    try:
        data = toml_loads()(text)
    except ValueError as error:
        raise UsageError(f"{path}: not valid TOML: {error}") from None
    return parse(data, path, check_argv)


def parse(
    data: Mapping[str, Any], where: str = "site file", check_argv: Optional[Callable[[Sequence[str]], object]] = None
) -> DrConfig:
    """The checked configuration from parsed TOML. `check_argv(argv)` checks each group's zferry
    arguments (zferry's own parser; the CLI passes it) and raises UsageError."""
    unknown = set(data) - {"groups"}
    if unknown:
        raise UsageError(f"{where}: unknown top-level key(s) {', '.join(sorted(unknown))}; only [groups.NAME] tables")
    groups_table = _table(data.get("groups"), f"{where}: [groups]")
    if not groups_table:
        raise UsageError(f"{where}: no groups; define at least one [groups.NAME] table")
    groups = tuple(
        _group(name, _table(value, f"{where}: [groups.{name}]"), where) for name, value in groups_table.items()
    )
    if check_argv is not None:
        for group in groups:
            first, second = group.sites[0], group.sites[1]
            try:
                check_argv(replication_argv(group, first, second))
            except UsageError as error:
                raise UsageError(f"{where}: [groups.{group.name}.options] extra_args: {error}") from None
    return DrConfig(groups)


def _table(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"{what} must be a table")
    return value


def _name(value: str, what: str) -> str:
    if not _NAME.fullmatch(value):
        raise UsageError(f"{what} {value!r}: use letters, digits, '_', '.', '-' (at most 64, not starting with a sign)")
    return value


def _group(name: str, table: dict[str, Any], where: str) -> Group:
    what = f"{where}: [groups.{_name(name, 'group name')}]"
    unknown = set(table) - _GROUP_KEYS
    if unknown:
        raise UsageError(
            f"{what}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_GROUP_KEYS))}"
        )
    recursive = table.get("recursive", False)
    if not isinstance(recursive, bool):
        raise UsageError(f"{what}: recursive must be true or false")
    sites_table = _table(table.get("sites"), f"{what} sites")
    sites = tuple(_site(site_name, value, what) for site_name, value in sites_table.items())
    if len(sites) < 2:
        raise UsageError(f"{what}: give at least two sites in [groups.{name}.sites]")
    keys = {(s.endpoint.host, s.endpoint.user, s.root) for s in sites}
    if len(keys) != len(sites):
        raise UsageError(f"{what}: two sites name the same dataset")
    primary = table.get("primary")
    if not isinstance(primary, str) or primary not in {s.name for s in sites}:
        raise UsageError(f"{what}: primary must name one of its sites ({', '.join(s.name for s in sites)})")
    options = _table(table.get("options", {}), f"{what} options")
    unknown = set(options) - _OPTION_KEYS
    if unknown:
        raise UsageError(f"{what} options: unknown key(s) {', '.join(sorted(unknown))}; known: extra_args")
    extra = options.get("extra_args", [])
    if not isinstance(extra, list) or not all(isinstance(word, str) for word in extra):
        raise UsageError(f"{what} options: extra_args must be a list of strings")
    for word in extra:
        if word.split("=", 1)[0] in _FORBIDDEN_ARGS:
            raise UsageError(f"{what} options: {word} is not allowed: zferry-dr preserves divergent data itself")
    return Group(name, primary, sites, recursive, tuple(extra))


def _site(name: str, value: Any, what: str) -> Site:
    label = f"{what} site {_name(name, 'site name')}"
    if isinstance(value, str):
        return Site(name, validate.endpoint(value))
    table = _table(value, label)
    unknown = set(table) - _SITE_KEYS
    if unknown:
        raise UsageError(
            f"{label}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_SITE_KEYS))}"
        )
    dataset = table.get("dataset")
    if not isinstance(dataset, str):
        raise UsageError(f'{label}: dataset = "[user@]host:pool/path" is required')
    files = {key: table.get(key) for key in ("ssh_config_file", "ssh_private_key")}
    for key, path in files.items():
        if path is not None and not isinstance(path, str):
            raise UsageError(f"{label}: {key} must be a file name")
    return Site(
        name,
        validate.endpoint(dataset),
        check_file(files["ssh_config_file"], f"{label} ssh_config_file"),
        check_file(files["ssh_private_key"], f"{label} ssh_private_key"),
    )


def replication_argv(group: Group, src: Site, dst: Site, extra: Sequence[str] = ()) -> list[str]:
    """zferry's argv replicating the group from `src` to `dst` (whichever direction): the group's
    extra_args, the sites' ssh files, `-r`, then `extra` (e.g. --job-name) and the two endpoints."""
    argv = list(group.extra_args)
    for side, site in (("src", src), ("dst", dst)):
        if site.ssh_config_file:
            argv += [f"--ssh-{side}-config-file", site.ssh_config_file]
        if site.ssh_private_key:
            argv += [f"--ssh-{side}-private-key", site.ssh_private_key]
    if group.recursive:
        argv.append("--recursive")
    return [*argv, *extra, str(src.endpoint), str(dst.endpoint)]
