"""What the snapshot-lifecycle steps of one run should do: typed, validated, immutable.

Built from the command line by `zferry.cli.lifecycle_options`; read by the jobs in
`zferry.lifecycle` (create, bookmarks, prune, dataset deletion) and by the snapshot cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from zferry.lifecycle.naming import DEFAULT_NAMING, SnapshotNaming
from zferry.lifecycle.periods import PeriodAnchors

if TYPE_CHECKING:
    from zferry.lifecycle.plan import Plan

DUMMY = "dummy"
"""A source (or destination) named `dummy` stands for "no dataset": nothing exists there."""

BOOKMARK_MODES = ("all", "hourly", "minutely", "secondly", "none")
DEFAULT_BOOKMARK_MODE = "hourly"


@dataclass(frozen=True)
class CreateConfig:
    """`--create-src-snapshots` and its plan, naming and anchors."""

    plan: Plan
    naming: SnapshotNaming = DEFAULT_NAMING
    anchors: PeriodAnchors = PeriodAnchors()
    even_if_not_due: bool = False


@dataclass(frozen=True)
class LifecycleConfig:
    """Every lifecycle step of a run; the defaults do nothing beyond replication."""

    create: Optional[CreateConfig] = None
    skip_replication: bool = False
    delete_snapshots: Optional[str] = None  # None | "snapshots" | "bookmarks"
    delete_except: bool = False  # the snapshot filters select what to keep
    crosscheck_other_kind: bool = True  # also protect GUIDs the source has as the other kind (bookmark/snapshot)
    delete_datasets: bool = False
    delete_datasets_chosen: bool = False  # an include filter or --delete-dst-datasets-whole-tree (needed with dummy)
    delete_empty: Optional[str] = None  # None | "snapshots+bookmarks" | "snapshots"
    create_bookmarks: str = DEFAULT_BOOKMARK_MODE
    cache_dir: Optional[str] = None  # None: --cache-snapshots is off

    @property
    def deletes_on_dst(self) -> bool:
        """True when some step deletes snapshots, bookmarks or datasets on the destination."""
        return bool(self.delete_snapshots or self.delete_datasets or self.delete_empty)
