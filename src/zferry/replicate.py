"""The replication job: list both trees once, plan each dataset, run the plans in parallel.

This is the imperative shell around the pure planner (`zferry.plan`): it reads metadata
in bulk (`replicate_lists`), asks the planner what to do, and hands each plan to the sender
(`replicate_send`), after resuming an interrupted receive where there is one (`replicate_resume`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable, Optional

from zferry import fencing, zfs
from zferry.errors import ConflictError, ZferryError
from zferry.exec.background import Background
from zferry.exec.probe import Capabilities
from zferry.exec.runner import Runner
from zferry.inventory import Side, list_inventory, list_inventory_cached
from zferry.model import Dataset, Inventory, Version
from zferry.observe.progress import TransferProgress
from zferry.plan import send_flags
from zferry.plan.clones import as_clone, blocked, clone_waves, find_version, same_snapshot, within
from zferry.plan.properties import PropertyRules
from zferry.plan.replication import Conflict, ConflictPolicy, DatasetPlan, plan_dataset
from zferry.plan.resumed import completed_by_resume
from zferry.plan.steps import sent_snapshots
from zferry.replicate_lists import PairLists, needs_fresh_lists
from zferry.replicate_resume import Resumer
from zferry.replicate_send import Sender
from zferry.retry import RetryPolicy, call_with_retries
from zferry.schedule import ScheduleResult, run_tree
from zferry.select.datasets import DatasetFilter
from zferry.select.snapshots import SnapshotFilter
from zferry.transfer import StreamOptions

log = logging.getLogger("zferry")
VERBOSE = 15  # between DEBUG (every command) and INFO (what changed)


@dataclass(frozen=True)
class ReplicationConfig:
    recursive: bool = False
    datasets: DatasetFilter = DatasetFilter()
    snapshots: SnapshotFilter = SnapshotFilter()
    policy: ConflictPolicy = ConflictPolicy()
    threads: int = 1
    skip_on_error: str = "fail"
    dryrun: Optional[str] = None  # None | "send" (run nothing that changes anything) | "recv" (receive -n)
    send_options: tuple[str, ...] = ()
    send_flags: str = send_flags.DEFAULT  # record flags of new chains (-L -c -e), unless send_options name some
    recv_options: tuple[str, ...] = ()
    resume: bool = True
    stream: StreamOptions = StreamOptions(progress_interval=0)
    properties: PropertyRules = PropertyRules()
    retry: RetryPolicy = RetryPolicy()
    version_details: bool = False  # list creation times and holds (time filters and lifecycle need them)
    cache_dir: Optional[str] = None  # --cache-snapshots: reuse the destination's snapshot lists


@dataclass
class PairReport:
    """What happened to one root pair."""

    src: str
    dst: str
    updated: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    snapshots_sent: int = 0
    seconds: float = 0.0
    bytes_sent: int = 0  # stream bytes, as pv counted them where the stream passed this host (else 0)
    # source dataset -> its newest snapshot the destination has too (by GUID), after this run
    latest_common: dict[str, Version] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


class PairReplication:
    """Replicates one source tree to one destination tree."""

    def __init__(
        self, runner: Runner, config: ReplicationConfig, src: Side, dst: Side, local: Optional[Capabilities] = None
    ) -> None:
        self.runner = runner
        self.local = local or Capabilities(True, frozenset())
        self.config = config
        self.src = src
        self.dst = dst
        self.report = PairReport(str(src), str(dst))
        self.lists = PairLists(runner, src, dst)
        self._sender: Optional[Sender] = None
        # Called after a dataset was sent, with its plan and source versions (e.g. to bookmark them).
        self.on_sent: Optional[Callable[[DatasetPlan, Sequence[Version]], None]] = None
        self.before_send: Optional[Callable[[DatasetPlan, Sequence[Version]], None]] = None  # e.g. protect by hold
        self.on_progress: Optional[Callable[[TransferProgress], None]] = None  # live bytes (the engine's event)

    @property
    def inventories(self) -> tuple[Inventory, Inventory]:
        """The source and destination listings this run worked from (the destination's before it sent)."""
        return self.lists.src, self.lists.dst

    @property
    def sender(self) -> Sender:
        """What runs the plans; made by `run` (a front end may change `config` after construction)."""
        if self._sender is None:
            self._sender = self._new_sender()
        return self._sender

    def _new_sender(self) -> Sender:
        sender = Sender(self.runner, self.config, self.lists, self.report, self.local)
        sender.on_progress = self.on_progress
        return sender

    def run(self, src_inventory: Optional[Inventory] = None) -> PairReport:
        """Replicate every selected dataset; `src_inventory` is a fresh source listing to reuse, if any."""
        started = time.monotonic()
        self._sender = self._new_sender()
        dst_listing = Background(self._list_dst, "zferry-list-dst")  # both sides at once
        props = [self.config.datasets.exclude_property] if self.config.datasets.exclude_property else []
        if src_inventory is None and self.config.cache_dir and not self.config.version_details and not props:
            src_inventory = list_inventory_cached(self.runner, self.src, self.config.cache_dir, at_once=True)
        elif src_inventory is None:
            src_inventory = list_inventory(self.runner, self.src, props, self.config.version_details, at_once=True)
        if src_inventory is None:
            raise ZferryError(f"source dataset {self.src} does not exist; check the name (zfs list {self.src.root})")
        self.lists.src = src_inventory
        if self.config.properties.needs_source_properties:
            out = self.runner.run(self.src.host, zfs.get_properties(self.src.root), classify=zfs.classify_error)
            self.sender.src_props = zfs.parse_properties(out)
        self.lists.dst = dst_listing.result() or Inventory.empty()
        self.lists.present.update(self.lists.dst.datasets)
        roots = src_inventory.datasets.get(self.src.root), self.lists.dst.datasets.get(self.dst.root)
        refused = fencing.refusal(*roots)
        if refused is not None:  # whatever force options it has: nothing is sent, rolled back or destroyed
            log.error("%s -> %s: %s", self.src, self.dst, refused)
            self.report.failed = {self.src.root: refused}
            return self.report
        user_props = {d.name: d.user_props for d in src_inventory.datasets.values()}
        names = self.config.datasets.select(
            self.src.root, list(src_inventory.datasets), user_props, self.config.recursive
        )
        if not names:
            log.warning("%s: no dataset selected (check the dataset filters)", self.src)
        result = self._run_in_waves(names)
        self.report.failed = {name: str(err) for name, err in result.failed.items()}
        self.report.skipped = result.skipped
        self.report.seconds = time.monotonic() - started
        return self.report

    def _list_dst(self) -> Optional[Inventory]:
        if self.config.cache_dir and not self.config.version_details:
            return list_inventory_cached(self.runner, self.dst, self.config.cache_dir)
        return list_inventory(self.runner, self.dst, detail=self.config.version_details)

    def dst_name(self, src_name: str) -> str:
        return self.dst.root + src_name[len(self.src.root) :]

    def _run_in_waves(self, names: list[str]) -> ScheduleResult:
        """Replicate `names` parents first, and each clone after its origin (`plan.clones.clone_waves`)."""
        policy = self.config.skip_on_error
        origins = {n: o.dataset for n in names if (o := self._src_origin(n)) is not None}
        total = ScheduleResult()
        for wave in clone_waves(names, origins):
            if total.failed and policy == "fail":
                total.skipped += wave
                continue
            skip = blocked(wave, {*total.failed, *total.skipped}, origins) if policy == "tree" else []
            runnable = [n for n in wave if n not in skip]
            done = run_tree(runnable, self._replicate_one, self.config.threads, policy, cancel=self.runner.cancel)
            total.succeeded += done.succeeded
            total.failed.update(done.failed)
            total.skipped += skip + done.skipped
        return total

    # -- one dataset -------------------------------------------------------------------------

    def _replicate_one(self, src_name: str) -> None:
        dst_name = self.dst_name(src_name)

        def attempt() -> int:
            self.sender.new_attempt(dst_name)
            return self._replicate(src_name, dst_name)

        try:
            sent = call_with_retries(
                attempt,
                self.config.retry,
                f"{src_name} -> {dst_name}",
                lambda: self.lists.relist_dst(dst_name),
            )
        except ZferryError as error:
            log.error("%s -> %s: %s", src_name, dst_name, error)
            raise
        with self.lists.lock:
            (self.report.updated if sent else self.report.up_to_date).append(src_name)
            self.report.snapshots_sent += sent

    def _replicate(self, src_name: str, dst_name: str) -> int:
        dst_dataset = self.lists.dst.datasets.get(dst_name)
        resumed = 0
        if dst_dataset is not None and dst_dataset.resume_token:
            dst_dataset, completed = Resumer(self.config, self.sender).resume(src_name, dst_dataset)
            resumed = int(completed)  # a resumed stream completes one snapshot
        self._check_encryption(src_name)
        outcome = self._plan(src_name, dst_name, dst_dataset)
        if self._needs_fresh_lists(outcome, src_name, dst_name, bool(resumed)):
            dst_dataset = self.lists.relist_cached(src_name, dst_name, dst_dataset)
            outcome = self._plan(src_name, dst_name, dst_dataset)
        if isinstance(outcome, Conflict):
            raise ConflictError(outcome.message())
        src_versions = self.lists.src.versions.get(src_name, ())
        src_snapshots = [v for v in src_versions if not v.is_bookmark]
        dst_snapshots = self.lists.dst_snapshots(dst_name)
        outcome = self._as_clone(outcome)
        if not src_snapshots:
            log.log(VERBOSE, "%s: has no snapshots, nothing to send", src_name)
        if outcome.is_noop:
            log.log(VERBOSE, "%s: up to date with %s", src_name, dst_name)
            self._note_common(src_name, src_snapshots, dst_snapshots)
            done = completed_by_resume(src_name, dst_name, src_snapshots, dst_snapshots) if resumed else None
            if done is not None and self.on_sent is not None:
                self.on_sent(done, src_versions)  # the resumed stream was this dataset's send: move the hold
            return resumed
        if dst_dataset is None:
            self.sender.ensure_parent(dst_name)
        asking = self.sender.prepare()  # at the same time as the hold
        holding = self._start_before_send(outcome, src_versions)
        try:
            if asking is not None:
                asking.result()
            self.sender.execute(outcome)
        finally:
            if holding is not None:
                holding.result()  # the hold has landed before anything counts the dataset as sent
        if self.on_sent is not None:
            self.on_sent(outcome, src_versions)
        with self.lists.lock:
            self.lists.present.add(dst_name)
        sent = sent_snapshots(outcome.steps, src_snapshots)
        self._note_common(src_name, src_snapshots, [*self.lists.dst_snapshots(dst_name), *sent])
        return resumed + len(sent)

    def _start_before_send(self, plan: DatasetPlan, src_versions: Sequence[Version]) -> Optional[Background[None]]:
        """Start `before_send` (the source's protective hold) beside the send rather than before it:
        each is a `zfs` process that waits for a transaction group, and a snapshot being sent
        cannot be destroyed anyway (`zfs send` holds it while it reads it)."""
        if self.before_send is None:
            return None
        hook = self.before_send
        return Background(lambda: hook(plan, src_versions), "zferry-hold")

    def _plan(self, src_name: str, dst_name: str, dst_dataset: Optional[Dataset]) -> DatasetPlan | Conflict:
        src_versions = self.lists.src.versions.get(src_name, ())
        src_snapshots = [v for v in src_versions if not v.is_bookmark]
        selected = self.config.snapshots.select(src_snapshots, time.time())
        dst_snapshots = self.lists.dst_snapshots(dst_name)
        return plan_dataset(
            src_name,
            dst_name,
            src_versions,
            selected,
            dst_dataset is not None,
            dst_snapshots,
            dst_dataset is None or (not dst_snapshots and self.lists.is_empty(dst_dataset)),
            self.config.policy,
        )

    def _needs_fresh_lists(
        self, outcome: DatasetPlan | Conflict, src_name: str, dst_name: str, resumed: bool = False
    ) -> bool:
        """Whether a plan made from a cached list must be made again from fresh ones (`needs_fresh_lists`)."""
        src_cached, dst_cached = self.lists.is_cached(src_name, dst_name)
        return needs_fresh_lists(outcome, self.config.policy, src_cached, dst_cached, resumed)

    def _note_common(self, src_name: str, src_snapshots: Sequence[Version], dst_has: Sequence[Version]) -> None:
        """Remember the newest source snapshot the destination has (by GUID), for the lag metric."""
        guids = {v.guid for v in dst_has}
        common = next((v for v in reversed(src_snapshots) if v.guid in guids), None)
        if common is not None:
            with self.lists.lock:
                self.report.latest_common[src_name] = common

    def _check_encryption(self, src_name: str) -> None:
        dataset = self.lists.src.datasets.get(src_name)
        if dataset is not None and dataset.is_encrypted and not zfs.is_raw_send(self.config.send_options):
            raise ZferryError(
                f"{src_name} is encrypted ({dataset.encryption}); a plain send would decrypt it and put the "
                "data in clear on the wire and on the destination. Send it raw, keeping it encrypted and the "
                "keys off the destination: --zfs-send-program-opts=--raw"
            )

    def _src_origin(self, src_name: str) -> Optional[Version]:
        """A clone's origin snapshot, when the source listing has it."""
        dataset = self.lists.src.datasets.get(src_name)
        return find_version(dataset.origin if dataset else None, self.lists.src.versions)

    def _as_clone(self, plan: DatasetPlan) -> DatasetPlan:
        """A new clone whose origin is on the destination is received as a clone of the destination's copy."""
        origin = self._src_origin(plan.src)
        if origin is None or not plan.steps or plan.steps[0].base is not None or plan.force_receive:
            return plan
        copy = None
        if within(origin.dataset, self.src.root):
            dst_origin = self.dst_name(origin.dataset)
            self.lists.relist_dst(dst_origin)  # the origin may have been received by this run
            copy = same_snapshot(origin, self.lists.dst_snapshots(dst_origin))
        if copy is None:
            log.info(
                "%s: a clone of %s, which is not on the destination: sending it in full (it will not share "
                "the origin's blocks there)",
                plan.src,
                origin,
            )
            return plan
        with self.lists.lock:
            self.sender.clone_origins[plan.dst] = (origin.full_name, copy.full_name)
        log.log(VERBOSE, "%s: a clone of %s: received as a clone of %s", plan.src, origin, copy)
        return as_clone(plan, origin)
