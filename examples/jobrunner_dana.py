#!/usr/bin/env python3
"""Dana (PRD 2.1): one database host, a snapshot every 10 seconds, replicated to two standby replicas.

The primary keeps an hour of 10-secondly snapshots, the replicas six hours. Run it from systemd timers
or cron, on the primary (push) or on each replica with --dst-host NAME (pull):

    ./jobrunner_dana.py --create-src-snapshots --replicate                       # every 10 seconds
    ./jobrunner_dana.py --monitor-src-snapshots --monitor-dst-snapshots          # every minute
    ./jobrunner_dana.py --prune-src-snapshots --prune-src-bookmarks --prune-dst-snapshots   # every 5 minutes

Any option after the script's name wins over the values below (e.g. --src-hosts "['zfvm-a']" for the
sandbox), and zferry options pass through to every sub-job (--dryrun, -v, --ssh-src-config-file FILE).
--jobrunner-dryrun prints the zferry command lines and runs nothing.
"""

from __future__ import annotations

import sys

from zferry.cli import jobrunner

root_dataset_pairs = ["data/postgres", "data/postgres"]
target = "standby"
src_hosts = ["primary-db"]
dst_hosts = {"standby-db1": [target], "standby-db2": [target]}
retain_dst_targets = dst_hosts
dst_root_datasets = {"standby-db1": "", "standby-db2": ""}
org = "prod"
src_snapshot_plan = {org: {target: {"10secondly": 360, "minutely": 60}}}
dst_snapshot_plan = {org: {target: {"10secondly": 2160, "minutely": 360}}}
monitor_snapshot_plan = {org: {target: {"10secondly": {"warning": "1 minutes", "critical": "5 minutes"}}}}


def arguments() -> list[str]:
    """The jobrunner command line this configuration stands for (verbs come from the caller)."""
    return [
        *root_dataset_pairs,
        *["--src-hosts", repr(src_hosts), "--dst-hosts", repr(dst_hosts)],
        *["--retain-dst-targets", repr(retain_dst_targets), "--dst-root-datasets", repr(dst_root_datasets)],
        *["--src-snapshot-plan", repr(src_snapshot_plan), "--dst-snapshot-plan", repr(dst_snapshot_plan)],
        *["--monitor-snapshot-plan", repr(monitor_snapshot_plan)],
        *["--workers", "100%", "--job-id", "dana-postgres"],
    ]


if __name__ == "__main__":
    sys.exit(jobrunner.main(arguments() + sys.argv[1:]))
