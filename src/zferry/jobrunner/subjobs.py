"""Pure: the zferry sub-jobs a fleet configuration asks for, each a hierarchical name and an argv.

Per source host S (and destination host D), the names and what waits for what (`~` is a barrier:
a sub-job waits until every sub-job before the `~` with the same prefix has succeeded):

    S/run/create-src-snapshots
    S/run/~/replicate/D                            after the snapshots were taken
    S/run/~/replicate/D/~/prune-dst-snapshots      after the replication to D succeeded
    S/run/~/prune-src-snapshots                    after the snapshots were taken, not after replication:
                                                   a failing destination must not let the source fill up
    S/run/~/prune-src-snapshots/~/prune-src-bookmarks   after that: both write to (and lock) the source
    S/monitor/src-snapshots                        monitoring waits for nothing and stops nothing
    S/monitor/D/dst-snapshots

Two sub-jobs that write to the same dataset never run at once (the second would find it locked).
Targets route snapshots: a destination's replication and pruning see only the plan entries of its
targets. Pruning only ever considers snapshots named after the targets of the host it prunes
(`org_target_...`): other targets', other jobs' and hand-made snapshots are kept.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Optional

from zferry import validate
from zferry.errors import UsageError
from zferry.jobrunner.config import FleetConfig, PlanDict
from zferry.lifecycle.config import DUMMY

SRC_HOST = "^SRC_HOST"
DST_HOST = "^DST_HOST"


@dataclass(frozen=True)
class SubJob:
    """One zferry run: its hierarchical name and its command line (without the program name)."""

    name: str
    argv: tuple[str, ...]


_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")
_NAME_MAX = 64


def job_name(base: str, name: str) -> str:
    """A sub-job's own `--job-name`: `base`, then the sub-job's name with `/` as `.` and without `~`.

    Job names name log files, audit records, metric labels and lock keys, so characters zferry
    does not allow become `-`; a name too long ends in a hash of the whole, so it stays distinct.
    """
    words = [_UNSAFE.sub("-", part) for part in name.split("/") if part and part != "~"]
    text = ".".join([base, *words])
    if len(text) > _NAME_MAX:
        digest = hashlib.sha256(text.encode()).hexdigest()[:10]
        text = f"{text[: _NAME_MAX - len(digest) - 1]}-{digest}"
    return validate.job_name(text)


def host_name(host: str) -> str:
    """The host part of `[user@]host` (what ^SRC_HOST and ^DST_HOST stand for)."""
    return host.rpartition("@")[2]


def substitute(text: str, src_host: str, dst_host: str) -> str:
    """`text` with ^SRC_HOST and ^DST_HOST replaced by the host names."""
    return text.replace(SRC_HOST, host_name(src_host)).replace(DST_HOST, host_name(dst_host))


def endpoint(host: str, dataset: str, local_names: Collection[str]) -> str:
    """`host:dataset`, or just `dataset` for a host reached without ssh."""
    return dataset if host in local_names else f"{host}:{dataset}"


def dst_dataset(config: FleetConfig, src_host: str, dst_host: str, dataset: str) -> str:
    """The destination dataset on `dst_host`: under its root dataset unless it starts with '/'."""
    if dataset.startswith("/"):
        path = dataset.strip("/")
    else:
        root = config.dst_root_datasets[dst_host]
        path = f"{root}/{dataset.strip('/')}" if root else dataset.strip("/")
    return substitute(path, src_host, dst_host)


def restrict(plan: Optional[PlanDict], targets: Collection[str]) -> PlanDict:
    """The entries of `plan` for `targets` only (orgs left without a target are dropped)."""
    out: PlanDict = {}
    for org, by_target in (plan or {}).items():
        kept = {t: periods for t, periods in by_target.items() if t in targets}
        if kept:
            out[org] = kept
    return out


def plan_text(plan: PlanDict) -> str:
    """A plan as zferry's plan options take it (JSON, which is also copy-pasteable)."""
    return json.dumps(plan, separators=(", ", ": "))


def names_regex(plan: PlanDict, targets: Iterable[str]) -> str:
    """A full-match regex of every snapshot name of `targets` of the plan's orgs: what pruning may consider."""
    wanted = set(targets)
    parts = []
    for org in sorted(plan):
        for target in sorted(wanted):
            # an empty target's names are org_<timestamp>: a year, so they never match org_target_...
            parts.append(re.escape(f"{org}_{target}_") + ".*" if target else re.escape(f"{org}_") + "[1-9][0-9]{3}.*")
    return "(?:" + "|".join(parts) + ")"


def _prune_options(keep: PlanDict, considered: Iterable[str], kind: str = "snapshots") -> list[str]:
    """Delete what `keep` does not keep among the snapshots (or bookmarks) of the `considered` targets.

    The filter groups are a union of what to keep: an exclude-only group keeps every name outside
    the considered targets; the except-plan's groups keep what the plan keeps.
    """
    return [
        "--skip-replication",
        f"--delete-dst-snapshots={kind}",
        "--exclude-snapshot-regex",
        names_regex(keep, considered),
        "--delete-dst-snapshots-except-plan",
        plan_text(keep),
    ]


def all_targets(plan: Optional[PlanDict]) -> set[str]:
    """Every target a plan names."""
    return {t for by_target in (plan or {}).values() for t in by_target}


def check(config: FleetConfig) -> None:
    """Refuse configurations whose sub-jobs would be wrong, before anything runs."""
    verbs = set(config.verbs)
    needs = {
        "create_src_snapshots": ("--src-snapshot-plan", config.src_snapshot_plan),
        "prune_src_snapshots": ("--src-snapshot-plan", config.src_snapshot_plan),
        "prune_src_bookmarks": (
            "--src-bookmark-plan or --src-snapshot-plan",
            config.src_bookmark_plan or config.src_snapshot_plan,
        ),
        "prune_dst_snapshots": ("--dst-snapshot-plan", config.dst_snapshot_plan),
        "monitor_src_snapshots": ("--monitor-snapshot-plan", config.monitor_snapshot_plan),
        "monitor_dst_snapshots": ("--monitor-snapshot-plan", config.monitor_snapshot_plan),
    }
    for verb, (option, value) in needs.items():
        if verb in verbs and not value:
            raise UsageError(f"--{verb.replace('_', '-')} needs {option}")
    if verbs & {"replicate", "prune_dst_snapshots", "monitor_dst_snapshots"}:
        if not config.dst_hosts:
            raise UsageError("--dst-hosts is missing, e.g. --dst-hosts \"{'nas1': ['onsite']}\"")
        missing = [h for h in config.dst_hosts if h not in config.dst_root_datasets]
        if missing:
            raise UsageError(f"--dst-root-datasets has no root dataset for {', '.join(missing)} ('' for none)")
        _check_collisions(config)


def _check_collisions(config: FleetConfig) -> None:
    """Two sources must not replicate into the same destination datasets."""
    if len(config.src_hosts) < 2:
        return
    for dst in config.dst_hosts:
        for _, dataset in config.pairs:
            shared = {dst_dataset(config, src, dst, dataset) for src in config.src_hosts}
            if len(shared) < len(config.src_hosts):
                raise UsageError(
                    f"all {len(config.src_hosts)} source hosts would replicate into the same dataset on {dst}; "
                    f"put {SRC_HOST} in its --dst-root-datasets entry, e.g. 'backups/{SRC_HOST}'"
                )


def generate(config: FleetConfig) -> list[SubJob]:
    """Every sub-job of the configuration, in the order they should start (before any jitter)."""
    check(config)
    jobs: list[SubJob] = []
    for src in config.src_hosts:
        jobs += _source_jobs(config, src)
    return jobs


def _source_jobs(config: FleetConfig, src: str) -> list[SubJob]:
    verbs, local = set(config.verbs), config.local_names
    common = ["--recursive"] if config.recursive else []
    common += config.passthrough
    src_words = [endpoint(src, substitute(s, src, src), local) for s, _ in config.pairs]
    jobs: list[SubJob] = []

    def add(name: str, words: list[str], options: list[str]) -> None:
        full = f"{src}/{name}"
        jobs.append(SubJob(full, (*words, *options, *common, "--job-name", job_name(config.job_name, full))))

    src_only = [w for s in src_words for w in (s, DUMMY)]
    on_src = [w for s in src_words for w in (DUMMY, s)]
    if "create_src_snapshots" in verbs and config.src_snapshot_plan:
        plan = plan_text(config.src_snapshot_plan)
        add(
            "run/create-src-snapshots",
            src_only,
            ["--skip-replication", "--create-src-snapshots", "--create-src-snapshots-plan", plan],
        )
    if "monitor_src_snapshots" in verbs and config.monitor_snapshot_plan:
        add("monitor/src-snapshots", src_only, ["--monitor-snapshots", plan_text(config.monitor_snapshot_plan)])
    for dst, targets in config.dst_hosts.items():
        for name, words, options in _destination_jobs(config, src, dst, targets, src_words):
            add(name, words, options)
    if "prune_src_snapshots" in verbs and config.src_snapshot_plan:
        keep = config.src_snapshot_plan
        add("run/~/prune-src-snapshots", on_src, _prune_options(keep, all_targets(keep)))
    bookmarks = config.src_bookmark_plan or config.src_snapshot_plan
    if "prune_src_bookmarks" in verbs and bookmarks:
        add(
            "run/~/prune-src-snapshots/~/prune-src-bookmarks",
            on_src,
            _prune_options(bookmarks, all_targets(bookmarks), "bookmarks"),
        )
    return _ordered(jobs)


def _destination_jobs(
    config: FleetConfig, src: str, dst: str, targets: tuple[str, ...], src_words: list[str]
) -> list[tuple[str, list[str], list[str]]]:
    """(name relative to the source host, dataset words, options) of the sub-jobs for one destination."""
    verbs, local = set(config.verbs), config.local_names
    dst_words = [endpoint(dst, dst_dataset(config, src, dst, d), local) for _, d in config.pairs]
    out: list[tuple[str, list[str], list[str]]] = []
    if "replicate" in verbs:
        plan = config.dst_snapshot_plan or config.src_snapshot_plan
        routed = restrict(plan, targets)
        if plan is None:
            out.append((f"run/~/replicate/{dst}", _zip(src_words, dst_words), []))
        elif routed:  # a host none of whose targets is in the plan gets nothing
            out.append(
                (f"run/~/replicate/{dst}", _zip(src_words, dst_words), ["--include-snapshot-plan", plan_text(routed)])
            )
    retained = config.retain_dst_targets.get(dst, ())
    keep = restrict(config.dst_snapshot_plan, retained)
    if "prune_dst_snapshots" in verbs and keep:
        considered = set(targets) | set(retained)
        dummies = [DUMMY] * len(dst_words)
        options = _prune_options(keep, considered)
        out.append((f"run/~/replicate/{dst}/~/prune-dst-snapshots", _zip(dummies, dst_words), options))
    watched = restrict(config.monitor_snapshot_plan, targets)
    if "monitor_dst_snapshots" in verbs and watched:
        dummies = [DUMMY] * len(dst_words)
        out.append(
            (f"monitor/{dst}/dst-snapshots", _zip(dummies, dst_words), ["--monitor-snapshots", plan_text(watched)])
        )
    return out


def _zip(left: list[str], right: list[str]) -> list[str]:
    return [w for pair in zip(left, right) for w in pair]


_PHASES = ("run/create", "run/~/replicate", "run/~/prune-src", "monitor/")


def _ordered(jobs: list[SubJob]) -> list[SubJob]:
    """Creation first, then replication and pruning, monitoring last (a stable sort: destinations keep their order)."""

    def phase(job: SubJob) -> int:
        rest = job.name.split("/", 1)[1]
        return next((i for i, p in enumerate(_PHASES) if rest.startswith(p)), len(_PHASES))

    return sorted(jobs, key=phase)
