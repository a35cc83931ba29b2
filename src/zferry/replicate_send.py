"""Carrying out one dataset's plan: what the destroy guard allows of its destructive part, missing
parents, then each send step as a `zfs send | zfs receive` pipeline with its flags, properties,
progress and dry-run rules."""

from __future__ import annotations

import itertools
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Optional

from zferry import destructive, zfs
from zferry.errors import CommandError, ConflictError
from zferry.exec import iocount
from zferry.exec.background import Background
from zferry.exec.probe import Capabilities
from zferry.exec.runner import Runner
from zferry.holds import hold_tag, release_own
from zferry.inventory import Side
from zferry.observe import audit
from zferry.observe.progress import Progress, TransferProgress
from zferry.plan import guard, send_flags
from zferry.plan.replication import DatasetPlan, destructions
from zferry.replicate_lists import PairLists
from zferry.stream_choice import CompressionChoice
from zferry.transfer import counts_sender, transfer_stages

if TYPE_CHECKING:
    from zferry.replicate import PairReport, ReplicationConfig

log = logging.getLogger("zferry")


class Sender:
    """Runs the plans of one pair's datasets (from several threads); adds the bytes it counted to `report`."""

    def __init__(
        self,
        runner: Runner,
        config: ReplicationConfig,
        lists: PairLists,
        report: PairReport,
        local: Capabilities,
    ) -> None:
        self.runner = runner
        self.config = config
        self.lists = lists
        self.report = report
        self.local = local
        self.src: Side = lists.src_side
        self.dst: Side = lists.dst_side
        self.src_props: dict[str, dict[str, tuple[str, str]]] = {}
        self.clone_origins: dict[str, tuple[str, str]] = {}  # dst clone -> (source, destination) origin
        self._dry_received: set[str] = set()  # --dryrun=recv: destinations that took a `zfs receive -n`
        self._compression = CompressionChoice(runner, self.src, self.dst, config.stream, config.recursive)
        self._count_writes = iocount.available()  # progress from `zfs send`'s write counter, without pv
        self.on_progress: Optional[Callable[[TransferProgress], None]] = None  # live bytes (the engine's event)
        self._transfer_ids = itertools.count()

    def new_attempt(self, dst_name: str) -> None:
        """A retry starts over: its first stream may be received dry again."""
        with self.lists.lock:
            self._dry_received.discard(dst_name)

    def prepare(self) -> Optional[Background[None]]:
        """Start what the first stream will ask the source (its stored compression), if anything,
        so that it runs while the snapshots are held; None when there is nothing to ask."""
        if not self._compression.asks_source:
            return None
        return Background(self._compression.fetch, "zferry-compression")

    def ensure_parent(self, dst_name: str) -> None:
        """Create missing parents of a new destination dataset, top down, each marked as zferry's
        placeholder and never mounted (`zfs create -o zferry:placeholder=NAME -o canmount=off`)."""
        parent = zfs.parent_of(dst_name)
        levels: list[str] = []
        while parent is not None and "/" in parent:  # a pool exists, or the receive reports that it does not
            levels.insert(0, parent)
            parent = zfs.parent_of(parent)
        for level in levels:
            with self.lists.lock:
                if level in self.lists.present:
                    continue
            try:
                self.runner.run(self.dst.host, zfs.create_placeholder(level), changes=True, classify=zfs.classify_error)
            except CommandError as error:
                if "already exists" not in error.stderr:
                    raise
            with self.lists.lock:
                self.lists.present.add(level)

    def execute(self, plan: DatasetPlan) -> None:
        """Run the plan; each destructive part only as far as the destroy guard allows it."""
        # a same-named or unrelated destination snapshot may go if the source lost it (a bookmark aside)
        src_guids = {v.guid for v in self.lists.src.snapshots(plan.src)}
        forced: Optional[guard.Destruction] = None  # the forced receive's, if any
        for destruction in destructions(plan, self.config.policy, src_guids):
            decision = destructive.check(self.runner, self.dst.host, self._with_holds(destruction))
            if not decision.allowed:
                raise ConflictError(f"{decision.message()}. Nothing was sent.")
            destructive.execute(self.runner, self.dst.host, decision)
            if destruction.action is guard.Action.FORCED_RECEIVE:
                forced = destruction
        force_receive = forced is not None
        with self.lists.lock:
            datasets = self.lists.dst.datasets
        flags = send_flags.dataset_flags(plan, datasets, self.clone_origins.get(plan.dst), self.config)
        for index, step in enumerate(plan.steps):
            log.info("%s: send %s -> %s", plan.src, step, plan.dst)
            chain = flags[min(index, 1)]
            options = (*self.config.send_options, *chain.extra)
            if step.base is None:
                send = zfs.send_full(step.target, options)
            else:
                send = zfs.send_incremental(step.base, step.target, step.intermediates, options)
            why = forced.why if forced is not None and index == 0 else None
            self.transfer(
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
        dataset = self.lists.dst.datasets.get(dst_name)
        if dataset is not None and dataset.is_placeholder:
            reason = "it now holds a replica: its placeholder marker goes"
            destructive.run(
                self.runner, self.dst.host, zfs.clear_placeholder(dst_name), audit.PROPERTY, (dst_name,), reason
            )

    def transfer(
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
        recv = zfs.receive(
            dst_name,
            force=force,
            resumable=self.config.resume,
            extra=[*self._receive_properties(send_argv, src_name, dst_name, full, record), *self.config.recv_options],
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
            self._compression.pays(send_argv, self.lists.src.datasets.get(src_name)),
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
                with self.lists.lock:
                    self.report.bytes_sent += progress.last

    def _receive_properties(
        self, send_argv: list[str], src_name: str, dst_name: str, full: bool, record: Optional[str]
    ) -> list[str]:
        """The receive's property options (-o/-x), the clone origin (-o origin=) and the chain's record."""
        origin = self.clone_origins.get(dst_name)
        as_clone = origin is not None and origin[0] in send_argv
        props = self.config.properties.receive_options(self.src_props.get(src_name, {}), full or as_clone)
        if as_clone:
            assert origin is not None
            props = [*props, *zfs.receive_origin(origin[1])]
        if record is not None:
            props = [*props, "-o", f"{send_flags.FLAGS_PROPERTY}={record}"]
        return props

    def _dry_receive_can_run(self, dst_name: str) -> bool:
        """--dryrun=recv: can `zfs receive -n` take this stream, or does it build on what a dry run never made?

        Only the first stream into a destination can be received dry: a later one's base is what the
        earlier dry receive would have created; so is a new dataset's missing parent.
        """
        if self.config.dryrun != "recv":
            return False
        parent = zfs.parent_of(dst_name)
        with self.lists.lock:
            first = dst_name not in self._dry_received
            self._dry_received.add(dst_name)
            parent_exists = parent is None or "/" not in parent or parent in self.lists.dst.datasets
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
