"""The replication job: list both trees once, plan each dataset, run the plans in parallel.

This is the imperative shell around the pure planner (`zferry.plan`): it reads metadata
in bulk, asks the planner what to do, and hands the resulting commands to the runner.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Callable, Optional

from zferry import destructive, fencing, zfs
from zferry.errors import CommandError, ConflictError, ZferryError
from zferry.exec import iocount
from zferry.exec.background import Background
from zferry.exec.probe import Capabilities
from zferry.exec.runner import Runner
from zferry.holds import hold_tag, release_own
from zferry.inventory import Side, list_inventory, list_inventory_cached
from zferry.model import Dataset, Inventory, Version
from zferry.observe import audit
from zferry.observe.progress import Progress, TransferProgress
from zferry.plan import guard, send_flags
from zferry.plan.clones import as_clone, blocked, clone_waves, find_version, same_snapshot, within
from zferry.plan.properties import PropertyRules
from zferry.plan.replication import Conflict, ConflictPolicy, DatasetPlan, destructions, plan_dataset
from zferry.plan.resume import token_problem
from zferry.plan.resumed import completed_by_resume
from zferry.plan.steps import sent_snapshots
from zferry.retry import RetryPolicy, call_with_retries
from zferry.schedule import ScheduleResult, run_tree
from zferry.select.datasets import DatasetFilter
from zferry.select.snapshots import SnapshotFilter
from zferry.stream_choice import CompressionChoice
from zferry.transfer import StreamOptions, counts_sender, transfer_stages

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
        self._lock = threading.Lock()
        self._dst_inventory = Inventory.empty()
        self._src_inventory = Inventory.empty()
        self._present: set[str] = set()  # destination datasets known to exist
        self._compression = CompressionChoice(runner, src, dst, config.stream, config.recursive)
        # Called after a dataset was sent, with its plan and source versions (e.g. to bookmark them).
        self.on_sent: Optional[Callable[[DatasetPlan, Sequence[Version]], None]] = None
        self.before_send: Optional[Callable[[DatasetPlan, Sequence[Version]], None]] = None  # e.g. protect by hold
        self._src_props: dict[str, dict[str, tuple[str, str]]] = {}
        self._dry_received: set[str] = set()  # --dryrun=recv: destinations that took a `zfs receive -n`
        self._clone_origins: dict[str, tuple[str, str]] = {}  # dst clone -> (source, destination) origin
        self._count_writes = iocount.available()  # progress from `zfs send`'s write counter, without pv
        self.on_progress: Optional[Callable[[TransferProgress], None]] = None  # live bytes (the engine's event)
        self._transfer_ids = itertools.count()

    @property
    def inventories(self) -> tuple[Inventory, Inventory]:
        """The source and destination listings this run worked from (the destination's before it sent)."""
        return self._src_inventory, self._dst_inventory

    def run(self, src_inventory: Optional[Inventory] = None) -> PairReport:
        """Replicate every selected dataset; `src_inventory` is a fresh source listing to reuse, if any."""
        started = time.monotonic()
        dst_listing = Background(self._list_dst, "zferry-list-dst")  # both sides at once
        props = [self.config.datasets.exclude_property] if self.config.datasets.exclude_property else []
        if src_inventory is None and self.config.cache_dir and not self.config.version_details and not props:
            src_inventory = list_inventory_cached(self.runner, self.src, self.config.cache_dir)
        elif src_inventory is None:
            src_inventory = list_inventory(self.runner, self.src, props, self.config.version_details)
        if src_inventory is None:
            raise ZferryError(f"source dataset {self.src} does not exist; check the name (zfs list {self.src.root})")
        self._src_inventory = src_inventory
        if self.config.properties.needs_source_properties:
            out = self.runner.run(self.src.host, zfs.get_properties(self.src.root), classify=zfs.classify_error)
            self._src_props = zfs.parse_properties(out)
        self._dst_inventory = dst_listing.result() or Inventory.empty()
        self._present.update(self._dst_inventory.datasets)
        roots = src_inventory.datasets.get(self.src.root), self._dst_inventory.datasets.get(self.dst.root)
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
            with self._lock:
                self._dry_received.discard(dst_name)
            return self._replicate(src_name, dst_name)

        try:
            sent = call_with_retries(
                attempt,
                self.config.retry,
                f"{src_name} -> {dst_name}",
                lambda: self._relist_dst(dst_name),
            )
        except ZferryError as error:
            log.error("%s -> %s: %s", src_name, dst_name, error)
            raise
        with self._lock:
            (self.report.updated if sent else self.report.up_to_date).append(src_name)
            self.report.snapshots_sent += sent

    def _replicate(self, src_name: str, dst_name: str) -> int:
        dst_dataset = self._dst_inventory.datasets.get(dst_name)
        resumed = 0
        if dst_dataset is not None and dst_dataset.resume_token:
            dst_dataset, completed = self._resume(src_name, dst_dataset)
            resumed = int(completed)  # a resumed stream completes one snapshot
        self._check_encryption(src_name)
        outcome = self._plan(src_name, dst_name, dst_dataset)
        if self._needs_fresh_lists(outcome, src_name, dst_name, bool(resumed)):
            self._relist_src(src_name)
            dst_dataset = self._relist_dst(dst_name)
            outcome = self._plan(src_name, dst_name, dst_dataset)
        if isinstance(outcome, Conflict):
            raise ConflictError(outcome.message())
        src_versions = self._src_inventory.versions.get(src_name, ())
        src_snapshots = [v for v in src_versions if not v.is_bookmark]
        dst_snapshots = self._dst_snapshots(dst_name)
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
            self._ensure_parent(dst_name)
        if self.before_send is not None:
            self.before_send(outcome, src_versions)
        self._execute(outcome)
        if self.on_sent is not None:
            self.on_sent(outcome, src_versions)
        with self._lock:
            self._present.add(dst_name)
        sent = sent_snapshots(outcome.steps, src_snapshots)
        self._note_common(src_name, src_snapshots, [*self._dst_snapshots(dst_name), *sent])
        return resumed + len(sent)

    def _plan(self, src_name: str, dst_name: str, dst_dataset: Optional[Dataset]) -> DatasetPlan | Conflict:
        src_versions = self._src_inventory.versions.get(src_name, ())
        src_snapshots = [v for v in src_versions if not v.is_bookmark]
        selected = self.config.snapshots.select(src_snapshots, time.time())
        dst_snapshots = self._dst_snapshots(dst_name)
        return plan_dataset(
            src_name,
            dst_name,
            src_versions,
            selected,
            dst_dataset is not None,
            dst_snapshots,
            dst_dataset is None or (not dst_snapshots and self._is_empty(dst_dataset)),
            self.config.policy,
        )

    def _needs_fresh_lists(
        self, outcome: DatasetPlan | Conflict, src_name: str, dst_name: str, resumed: bool = False
    ) -> bool:
        """A list from the snapshot cache may only say "up to date" or plan a plain send: a conflict,
        anything destructive (the destroy guard's facts) or a send or resumed send from a cached
        source list (bookmarks follow it; the cache may lack newer ones) is planned again from fresh lists."""
        with self._lock:
            src_cached = src_name in self._src_inventory.cached
            dst_cached = dst_name in self._dst_inventory.cached
        if not (src_cached or dst_cached):
            return False
        if isinstance(outcome, Conflict):
            return True
        sends = bool(outcome.steps) or resumed
        return bool(destructions(outcome, self.config.policy, ())) or (src_cached and sends)

    def _relist_src(self, src_name: str) -> None:
        """List one source dataset's snapshots and bookmarks again (not from the cache)."""
        fresh = list_inventory(self.runner, dataclasses.replace(self.src, root=src_name), recursive=False)
        with self._lock:
            versions = dict(self._src_inventory.versions)
            versions.pop(src_name, None)
            if fresh is not None:
                versions.update(fresh.versions)
            inventory = self._src_inventory
            self._src_inventory = Inventory(
                inventory.datasets, versions, inventory.detailed, inventory.cached - {src_name}
            )

    def _note_common(self, src_name: str, src_snapshots: Sequence[Version], dst_has: Sequence[Version]) -> None:
        """Remember the newest source snapshot the destination has (by GUID), for the lag metric."""
        guids = {v.guid for v in dst_has}
        common = next((v for v in reversed(src_snapshots) if v.guid in guids), None)
        if common is not None:
            with self._lock:
                self.report.latest_common[src_name] = common

    def _check_encryption(self, src_name: str) -> None:
        dataset = self._src_inventory.datasets.get(src_name)
        if dataset is not None and dataset.is_encrypted and not zfs.is_raw_send(self.config.send_options):
            raise ZferryError(
                f"{src_name} is encrypted ({dataset.encryption}); a plain send would decrypt it and put the "
                "data in clear on the wire and on the destination. Send it raw, keeping it encrypted and the "
                "keys off the destination: --zfs-send-program-opts=--raw"
            )

    def _src_origin(self, src_name: str) -> Optional[Version]:
        """A clone's origin snapshot, when the source listing has it."""
        dataset = self._src_inventory.datasets.get(src_name)
        return find_version(dataset.origin if dataset else None, self._src_inventory.versions)

    def _as_clone(self, plan: DatasetPlan) -> DatasetPlan:
        """A new clone whose origin is on the destination is received as a clone of the destination's copy."""
        origin = self._src_origin(plan.src)
        if origin is None or not plan.steps or plan.steps[0].base is not None or plan.force_receive:
            return plan
        copy = None
        if within(origin.dataset, self.src.root):
            dst_origin = self.dst_name(origin.dataset)
            self._relist_dst(dst_origin)  # the origin may have been received by this run
            copy = same_snapshot(origin, self._dst_snapshots(dst_origin))
        if copy is None:
            log.info(
                "%s: a clone of %s, which is not on the destination: sending it in full (it will not share "
                "the origin's blocks there)",
                plan.src,
                origin,
            )
            return plan
        with self._lock:
            self._clone_origins[plan.dst] = (origin.full_name, copy.full_name)
        log.log(VERBOSE, "%s: a clone of %s: received as a clone of %s", plan.src, origin, copy)
        return as_clone(plan, origin)

    def _dst_snapshots(self, dst_name: str) -> tuple[Version, ...]:
        with self._lock:
            return self._dst_inventory.snapshots(dst_name)

    def _resume(self, src_name: str, dst_dataset: Dataset) -> tuple[Optional[Dataset], bool]:
        """Finish an interrupted receive; discard the partial state only when it cannot be used.

        Returns the destination dataset as it is now, and whether the resumed stream completed.
        The token is checked on the source first (`plan.resume`). Only an error that says the token
        is unusable discards the state; any other (a kill, a full pool, the network) keeps it for
        the next attempt or run.
        """
        token = dst_dataset.resume_token
        assert token is not None
        if not self.config.resume:
            reason = "--no-resume-recv: the transfer starts over"
            return self._discard_partial(dst_dataset.name, reason), False
        problem, decoded = self._token_problem(src_name, token)
        if problem is not None:
            return self._discard_partial(dst_dataset.name, f"not resuming: {problem}"), False
        log.info("%s: resuming an interrupted transfer into %s", src_name, dst_dataset.name)
        record = send_flags.resumed_record(decoded)
        try:
            send = zfs.send_resume(token, self.config.send_options)
            self._transfer(send, src_name, dst_dataset.name, force=False, full=False, record=record)
        except CommandError as error:
            if self.config.dryrun or not zfs.is_unusable_token_error(error):
                raise
            return self._discard_partial(dst_dataset.name, f"cannot resume ({error})"), False
        return self._relist_dst(dst_dataset.name), True

    def _token_problem(self, src_name: str, token: str) -> tuple[Optional[str], Optional[zfs.ResumeToken]]:
        """Decode the destination's token on the source (`zfs send -nvt`); why it must not be used, if so."""
        try:
            out = self.runner.run(self.src.host, zfs.send_resume_describe(token), classify=zfs.classify_error)
        except CommandError as error:
            if zfs.is_unusable_token_error(error):
                return str(error), None
            raise
        decoded = zfs.parse_resume_token(out)
        if decoded is None:
            return "zfs send -nvt did not show the token's contents", None
        dataset = self._src_inventory.datasets.get(src_name)
        versions = self._src_inventory.versions.get(src_name, ())
        origin = self._src_origin(src_name)
        return token_problem(
            decoded,
            src_name,
            versions,
            dataset is not None and dataset.is_encrypted,
            () if origin is None else (origin.guid,),
        ), decoded

    def _discard_partial(self, dst_name: str, reason: str) -> Optional[Dataset]:
        log.warning("%s: %s; discarding the partial receive (zfs receive -A) and starting over", dst_name, reason)
        destructive.run(
            self.runner, self.dst.host, zfs.receive_abort(dst_name), audit.ABORT_RECEIVE, (dst_name,), reason
        )
        return self._relist_dst(dst_name)

    def _relist_dst(self, dst_name: str) -> Optional[Dataset]:
        fresh = list_inventory(
            self.runner,
            dataclasses.replace(self.dst, root=dst_name),
            detail=self._dst_inventory.detailed,
            recursive=False,
        )
        if fresh is None:
            return None
        with self._lock:
            datasets = dict(self._dst_inventory.datasets)
            versions = dict(self._dst_inventory.versions)
            datasets.pop(dst_name, None)
            versions.pop(dst_name, None)
            datasets.update(fresh.datasets)
            versions.update(fresh.versions)
            cached = self._dst_inventory.cached - {dst_name}
            self._dst_inventory = Inventory(datasets, versions, self._dst_inventory.detailed, cached)
        return fresh.datasets.get(dst_name)

    def _is_empty(self, dataset: Dataset) -> bool:
        with self._lock:
            children = any(n.startswith(dataset.name + "/") for n in self._dst_inventory.datasets)
            return guard.is_empty(dataset, self._dst_inventory.snapshots(dataset.name), children)

    def _ensure_parent(self, dst_name: str) -> None:
        """Create missing parents of a new destination dataset, top down, each marked as zferry's
        placeholder and never mounted (`zfs create -o zferry:placeholder=NAME -o canmount=off`)."""
        parent = zfs.parent_of(dst_name)
        levels: list[str] = []
        while parent is not None and "/" in parent:  # a pool exists, or the receive reports that it does not
            levels.insert(0, parent)
            parent = zfs.parent_of(parent)
        for level in levels:
            with self._lock:
                if level in self._present:
                    continue
            try:
                self.runner.run(self.dst.host, zfs.create_placeholder(level), changes=True, classify=zfs.classify_error)
            except CommandError as error:
                if "already exists" not in error.stderr:
                    raise
            with self._lock:
                self._present.add(level)

    def _execute(self, plan: DatasetPlan) -> None:
        """Run the plan; each destructive part only as far as the destroy guard allows it."""
        # a same-named or unrelated destination snapshot may go if the source lost it (a bookmark aside)
        src_guids = {v.guid for v in self._src_inventory.snapshots(plan.src)}
        forced: Optional[guard.Destruction] = None  # the forced receive's, if any
        for destruction in destructions(plan, self.config.policy, src_guids):
            decision = destructive.check(self.runner, self.dst.host, self._with_holds(destruction))
            if not decision.allowed:
                raise ConflictError(f"{decision.message()}. Nothing was sent.")
            destructive.execute(self.runner, self.dst.host, decision)
            if destruction.action is guard.Action.FORCED_RECEIVE:
                forced = destruction
        force_receive = forced is not None
        with self._lock:
            datasets = self._dst_inventory.datasets
        flags = send_flags.dataset_flags(plan, datasets, self._clone_origins.get(plan.dst), self.config)
        for index, step in enumerate(plan.steps):
            log.info("%s: send %s -> %s", plan.src, step, plan.dst)
            chain = flags[min(index, 1)]
            options = (*self.config.send_options, *chain.extra)
            if step.base is None:
                send = zfs.send_full(step.target, options)
            else:
                send = zfs.send_incremental(step.base, step.target, step.intermediates, options)
            why = forced.why if forced is not None and index == 0 else None
            self._transfer(
                send, plan.src, plan.dst, force=why is not None, full=step.base is None, why=why, record=chain.record
            )
            if index == 0 and force_receive:
                self._clear_placeholder(plan.dst)

    def _with_holds(self, destruction: guard.Destruction) -> guard.Destruction:
        """Release this pair's own holds on what would go; note whether another hold remains.

        Only where the guard would allow it otherwise: a refused destruction keeps our holds."""
        names = [v.full_name for v in destruction.versions if not v.is_bookmark]
        if not names or not guard.decide(destruction).allowed:
            return destruction
        others = release_own(self.runner, self.dst.host, hold_tag(self.dst), names, destruction.why)
        return replace(destruction, facts=replace(destruction.facts, held=bool(others)))

    def _clear_placeholder(self, dst_name: str) -> None:
        dataset = self._dst_inventory.datasets.get(dst_name)
        if dataset is not None and dataset.is_placeholder:
            reason = "it now holds a replica: its placeholder marker goes"
            destructive.run(
                self.runner, self.dst.host, zfs.clear_placeholder(dst_name), audit.PROPERTY, (dst_name,), reason
            )

    def _transfer(
        self,
        send_argv: list[str],
        src_name: str,
        dst_name: str,
        force: bool,
        full: bool,
        why: Optional[str] = None,
        record: Optional[str] = None,
    ) -> None:
        """Send `send_argv` into `dst_name`; `force`: receive with -F (recorded in the audit log with `why`);
        `record`: the chain's record flags, set on the destination by this receive."""
        origin = self._clone_origins.get(dst_name)
        as_clone = origin is not None and origin[0] in send_argv
        props = self.config.properties.receive_options(self._src_props.get(src_name, {}), full or as_clone)
        if as_clone:
            assert origin is not None
            props = [*props, *zfs.receive_origin(origin[1])]
        if record is not None:
            props = [*props, "-o", f"{send_flags.FLAGS_PROPERTY}={record}"]
        recv = zfs.receive(
            dst_name,
            force=force,
            resumable=self.config.resume,
            extra=[*props, *self.config.recv_options],
            dry_run=self.config.dryrun == "recv",
        )
        progress = self._progress(send_argv, dst_name)
        stages = transfer_stages(
            send_argv,
            recv,
            self.src.host,
            self.dst.host,
            self.src.caps,
            self.dst.caps,
            self.local,
            self.config.stream,
            progress.total if progress else None,
            progress.update if progress else None,
            self._count_writes,
            self._compression.pays(send_argv, self._src_inventory.datasets.get(src_name)),
        )
        try:
            # --dryrun=recv streams for real into `zfs receive -n`, which changes nothing.
            run_anyway = self._dry_receive_can_run(dst_name)
            if force:
                intent = audit.Intent(audit.FORCED_RECEIVE, self.dst.host.label, (dst_name,), why or "", tuple(recv))
                destructive.pipeline(self.runner, stages, intent, run_anyway)
            else:
                self.runner.pipeline(stages, classify=zfs.classify_error, run_anyway=run_anyway)
        finally:
            if progress:
                progress.finish()
                with self._lock:
                    self.report.bytes_sent += progress.last

    def _dry_receive_can_run(self, dst_name: str) -> bool:
        """--dryrun=recv: can `zfs receive -n` take this stream, or does it build on what a dry run never made?

        Only the first stream into a destination can be received dry: a later one's base is what the
        earlier dry receive would have created; so is a new dataset's missing parent.
        """
        if self.config.dryrun != "recv":
            return False
        parent = zfs.parent_of(dst_name)
        with self._lock:
            first = dst_name not in self._dry_received
            self._dry_received.add(dst_name)
            parent_exists = parent is None or "/" not in parent or parent in self._dst_inventory.datasets
        if not first:
            log.info("%s: dry run: showing, not receiving, a stream based on the dry-run receive before it", dst_name)
        elif not parent_exists:
            log.info("%s: dry run: showing, not receiving: its parent %s does not exist yet", dst_name, parent)
        return first and parent_exists

    def _progress(self, send_argv: list[str], dst_name: str) -> Optional[Progress]:
        """A progress reporter (with the estimated stream size on a terminal), when wanted and pv exists."""
        stream = self.config.stream
        has_pv = bool(stream.pv and self.local.has(stream.pv))
        counted = self._count_writes and counts_sender(send_argv, self.src.host, stream)
        remote = stream.remote_meter and any(stream.pv and c.has(stream.pv) for c in (self.src.caps, self.dst.caps))
        if not stream.progress_interval or not (has_pv or counted or remote) or self.runner.dry_run:
            return None
        total = None
        if stream.estimate_size:
            try:
                out = self.runner.run(self.src.host, zfs.send_size_estimate(send_argv), classify=zfs.classify_error)
                total = zfs.parse_size_estimate(out)
            except CommandError:
                pass
        listener, number = self.on_progress, next(self._transfer_ids)
        report = None if listener is None else lambda done: listener(TransferProgress(dst_name, number, done, total))
        return Progress(dst_name, total, quiet_seconds=stream.progress_interval * 0.9, listener=report)
