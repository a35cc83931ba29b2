"""Plain records that the planning logic works on: endpoints, datasets, snapshots, bookmarks.

They are parsed once from `zfs list -Hp` output (see `zferry.zfs`) and never mutated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class Endpoint:
    """Where a dataset lives: `[[user@]host:]dataset`. host None means this machine."""

    dataset: str
    host: Optional[str] = None
    user: Optional[str] = None
    port: Optional[int] = None

    @property
    def is_local(self) -> bool:
        return self.host is None

    def __str__(self) -> str:
        if self.host is None:
            return self.dataset
        who = f"{self.user}@" if self.user else ""
        return f"{who}{self.host}:{self.dataset}"

    def with_dataset(self, dataset: str) -> Endpoint:
        return Endpoint(dataset, self.host, self.user, self.port)


@dataclass(frozen=True)
class Version:
    """A snapshot (`ds@name`) or bookmark (`ds#name`) of one dataset.

    `guid` identifies the same point in time across pools; `createtxg` orders versions
    within one pool; `creation` is the unix time the snapshot was taken.
    """

    dataset: str
    name: str
    guid: int
    createtxg: int
    creation: int
    is_bookmark: bool = False
    userrefs: int = field(default=0, compare=False)  # `zfs hold`s on a snapshot; held ones cannot be destroyed

    @property
    def full_name(self) -> str:
        return f"{self.dataset}{'#' if self.is_bookmark else '@'}{self.name}"

    @property
    def tag(self) -> str:
        """The name with its sigil, as it follows the dataset name: `@s1` or `#s1`."""
        return f"{'#' if self.is_bookmark else '@'}{self.name}"

    def __str__(self) -> str:
        return self.full_name


@dataclass(frozen=True)
class Dataset:
    """A filesystem or volume with the properties zferry reads in its one bulk listing."""

    name: str
    kind: str = "filesystem"  # filesystem | volume
    guid: int = 0
    referenced: int = 0
    resume_token: Optional[str] = None
    encryption: Optional[str] = None
    used_by_dataset: Optional[int] = 0  # `usedbydataset` in bytes; None: unknown (counts as data)
    is_placeholder: bool = False  # zferry created it as an empty parent (`zferry:placeholder=on`)
    origin: Optional[str] = None  # a clone's origin snapshot (`pool/ds@snap`)
    send_flags: Optional[str] = None  # `zferry:send-flags`: the record flags of its chain (plan/send_flags.py)
    user_props: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_encrypted(self) -> bool:
        return self.encryption not in (None, "", "-", "off")


@dataclass(frozen=True)
class Inventory:
    """Everything one bulk `zfs list` said about a tree: its datasets and their versions.

    `versions` maps a dataset name to its snapshots and bookmarks, oldest first by createtxg.
    """

    datasets: dict[str, Dataset]
    versions: dict[str, tuple[Version, ...]]
    detailed: bool = False  # versions carry creation times and hold counts (else those are 0)
    # datasets whose versions came from the snapshot cache: they may decide "up to date", never a destroy
    cached: frozenset[str] = frozenset()

    def snapshots(self, dataset: str) -> tuple[Version, ...]:
        return tuple(v for v in self.versions.get(dataset, ()) if not v.is_bookmark)

    def bookmarks(self, dataset: str) -> tuple[Version, ...]:
        return tuple(v for v in self.versions.get(dataset, ()) if v.is_bookmark)

    @staticmethod
    def empty() -> Inventory:
        return Inventory({}, {})
