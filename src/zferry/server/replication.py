"""replicate as a task: a zferry job built with the CLI's own parser and job builder, run by the engine.

The request maps to zferry options: raw/compressed/large_blocks to --zfs-send-program-opts,
force to --force-rollback-to-latest-common-snapshot, recursive to --recursive; the snapshots
sent are those up to `{snap}` (from `from_snapshot` on, when given), selected by name.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Sequence
from typing import Any, Optional

from zferry import engine
from zferry.cli.main import build_job_config, parse_arguments
from zferry.engine import Event, JobConfig, PairResult
from zferry.errors import UsageError, ZferryError
from zferry.model import Endpoint, Version
from zferry.observe.progress import TransferProgress
from zferry.server.errors import bad_request
from zferry.server.requests import ReplicateRequest
from zferry.server.settings import ServerSettings
from zferry.server.tasks import FAILED, SUCCEEDED, PairRecord, Task, TaskStore
from zferry.server.zfshost import ZfsHost


def selected_snapshots(versions: Sequence[Version], snap: Version, base: Optional[Version]) -> list[str]:
    """Names of the snapshots to replicate: up to `snap`, from `base` on when given. Pure."""
    low = base.createtxg if base is not None else -1
    return [v.name for v in versions if not v.is_bookmark and low <= v.createtxg <= snap.createtxg]


def job_arguments(
    settings: ServerSettings, source: Endpoint, target: Endpoint, request: ReplicateRequest, names: Sequence[str]
) -> list[str]:
    """The zferry command line of a replicate request. Pure."""
    send = [
        o for o, wanted in (("-w", request.raw), ("-c", request.compressed), ("-L", request.large_blocks)) if wanted
    ]
    argv = [str(source), str(target), "--include-snapshot-regex", "(?:" + "|".join(map(re.escape, names)) + ")"]
    if send:
        argv.append("--zfs-send-program-opts=" + " ".join(send))
    if request.force:
        argv.append("--force-rollback-to-latest-common-snapshot")
    if request.recursive:
        argv.append("--recursive")
    if settings.ssh_config_file:
        argv += ["--ssh-src-config-file", settings.ssh_config_file, "--ssh-dst-config-file", settings.ssh_config_file]
    if settings.audit_log:
        argv += ["--audit-log", settings.audit_log]
    return argv


def build_job(argv: Sequence[str]) -> JobConfig:
    """The job, checked exactly as the `zferry` command checks it (a problem is a 400)."""
    try:
        return build_job_config(parse_arguments(list(argv)))
    except UsageError as error:
        raise bad_request(str(error), "check target and from_snapshot") from None
    except SystemExit:
        raise bad_request("the request does not make a valid zferry job", "check target and from_snapshot") from None


LIVE_SECONDS = 0.5  # how often a replicate task's bytes are updated while it transfers


def with_live_progress(job: JobConfig, interval: float = LIVE_SECONDS) -> JobConfig:
    """The job with progress every `interval` seconds, the size estimated, and a meter on the ZFS host
    when this machine has none (the task shows bytes done and total while it runs). Pure."""
    stream = dataclasses.replace(
        job.replication.stream, progress_interval=interval, estimate_size=True, remote_meter=True
    )
    return dataclasses.replace(job, replication=dataclasses.replace(job.replication, stream=stream))


class LiveBytes:
    """The bytes of every transfer of one task so far, summed (a tree makes one or more per dataset)."""

    def __init__(self) -> None:
        self._done: dict[int, int] = {}
        self._total: dict[int, int] = {}
        self._lock = threading.Lock()

    def add(self, progress: TransferProgress) -> tuple[int, Optional[int]]:
        """Bytes done and total (of the transfers estimated so far, None when none was) after `progress`."""
        with self._lock:
            self._done[progress.transfer] = progress.bytes_done
            if progress.bytes_total is not None:
                self._total[progress.transfer] = progress.bytes_total
            return sum(self._done.values()), sum(self._total.values()) if self._total else None


def target_endpoint(settings: ServerSettings, target: Endpoint) -> Endpoint:
    """A target without a host is on the managed host."""
    return target if target.host is not None else settings.endpoint(target.dataset)


def pair_record(result: PairResult, dataset: str, versions: Sequence[Version], state: str, ended: float) -> PairRecord:
    """What the status page keeps of a pair's last run (`versions`: the source dataset's, with creation times)."""
    creation = {v.guid: v.creation for v in versions}
    report = result.replication
    common = report.latest_common.get(dataset) if report is not None else None
    newest = next((v.name for v in reversed(versions) if not v.is_bookmark), None)
    return PairRecord(
        result.src,
        result.dst,
        state,
        ended,
        source_latest=newest,
        target_latest=common.name if common is not None else None,
        target_latest_creation=float(creation[common.guid]) if common is not None and common.guid in creation else None,
    )


class Replications:
    """The replicate work of tasks: one engine run per task, sharing the server's ssh master."""

    def __init__(self, settings: ServerSettings, zfs_host: ZfsHost, store: TaskStore) -> None:
        self.settings = settings
        self.zfs_host = zfs_host
        self.store = store

    def run(self, task: Task, job: JobConfig, dataset: str, versions: Sequence[Version]) -> dict[str, Any]:
        """Run the job; the result summarises what it sent, a failure raises with each dataset's error."""
        results: list[PairResult] = []
        live = LiveBytes()

        def collect(event: Event) -> None:
            result, progress = event.data.get("result"), event.data.get("progress")
            if event.kind == "pair_finished" and isinstance(result, PairResult):
                results.append(result)
            elif event.kind == "transfer_progress" and isinstance(progress, TransferProgress):
                self.store.progress(task, *live.add(progress))

        job = with_live_progress(job)
        runner = engine.make_runner(job)
        report = engine.run(job, collect, task.cancel, runner, self.zfs_host.connections)
        now = self.store.clock()
        for result in results:
            self.store.record_pair(pair_record(result, dataset, versions, SUCCEEDED if result.ok else FAILED, now))
        sent = sum(r.replication.bytes_sent for r in results if r.replication is not None)
        self.store.progress(task, sent)
        failed = {d: e for r in results if r.replication for d, e in r.replication.failed.items()}
        summary = {
            "snapshots_sent": sum(r.snapshots_sent for r in results),
            "bytes_sent": sent,
            "updated": [d for r in results if r.replication for d in r.replication.updated],
            "up_to_date": [d for r in results if r.replication for d in r.replication.up_to_date],
            "failed": failed,
        }
        if report.exit_code != 0:
            failures = "; ".join(f"{d}: {e}" for d, e in failed.items()) or report.audit_error or "failed"
            raise ZferryError(f"replication failed: {failures}")
        return summary
