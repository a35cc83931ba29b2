#!/usr/bin/env python3
"""Alex (PRD 2.2): N source hosts' home directories to two disaster-recovery sites.

Hourly, daily and weekly snapshots on every source; only daily and weekly ones go to the DR sites:
`onsite` ones to dr-onsite (kept 90 days), `offsite` ones to dr-cloud (kept 7 years). Each source's
backups land in their own dataset on each site (^SRC_HOST). Every host runs its own share from cron
(each command is one crontab line, wrapped here):

    0 * * * *  ./jobrunner_alex.py --src-host "$(hostname -s)" --create-src-snapshots \\
                   --prune-src-snapshots --prune-src-bookmarks
    1 2 * * *  ./jobrunner_alex.py --dst-host "$(hostname -s)" --replicate --prune-dst-snapshots
    0 * * * *  ./jobrunner_alex.py --dst-host "$(hostname -s)" --monitor-dst-snapshots

Add --localhost "$(hostname -s)" so that the host running it is reached without ssh. Options after
the script's name win over the values below; --jobrunner-dryrun shows the zferry command lines.
"""

from __future__ import annotations

import sys

from zferry.cli import jobrunner

root_dataset_pairs = ["tank/home", "home"]
recursive = True
src_hosts = [f"src{n:03d}" for n in range(1, 101)]
dst_hosts = {"dr-onsite": ["onsite"], "dr-cloud": ["offsite"]}
retain_dst_targets = dst_hosts
dst_root_datasets = {"dr-onsite": "backups/^SRC_HOST", "dr-cloud": "archives/^SRC_HOST"}
org = "prod"
src_snapshot_plan = {
    org: {
        "onsite": {"hourly": 36, "daily": 31, "weekly": 12},
        "offsite": {"daily": 31, "weekly": 12},
    }
}
dst_snapshot_plan = {
    org: {
        "onsite": {"daily": 90, "weekly": 13},
        "offsite": {"daily": 90, "weekly": 365},  # 7 years of weeklies
    }
}
monitor_snapshot_plan = {
    org: {
        "onsite": {"daily": {"warning": "25 hours", "critical": "26 hours"}},
        "offsite": {"daily": {"warning": "25 hours", "critical": "26 hours"}},
    }
}


def arguments() -> list[str]:
    """The jobrunner command line this configuration stands for (verbs come from the caller)."""
    return [
        *root_dataset_pairs,
        *(["--recursive"] if recursive else []),
        *["--src-hosts", repr(src_hosts), "--dst-hosts", repr(dst_hosts)],
        *["--retain-dst-targets", repr(retain_dst_targets), "--dst-root-datasets", repr(dst_root_datasets)],
        *["--src-snapshot-plan", repr(src_snapshot_plan), "--dst-snapshot-plan", repr(dst_snapshot_plan)],
        *["--monitor-snapshot-plan", repr(monitor_snapshot_plan)],
        *["--workers", "8", "--jitter", "--work-period-seconds", "600", "--job-id", "alex-home"],
    ]


if __name__ == "__main__":
    sys.exit(jobrunner.main(arguments() + sys.argv[1:]))
