#!/usr/bin/env python3
"""Sam (PRD 2.3): a home server backing up two datasets to a ZFS pool on a USB drive, once a day.

Daily and weekly snapshots on `tank`, replicated to the `usb` pool on the same machine (no ssh), which
keeps 90 days and a year of weeklies. When the drive is not plugged in, the replication fails and the
exit status says so; snapshots are still taken and pruned. One crontab line (wrapped here):

    0 2 * * * ./jobrunner_sam.py --create-src-snapshots --replicate --prune-src-snapshots \\
                  --prune-dst-snapshots --monitor-dst-snapshots

Options after the script's name win over the values below; --jobrunner-dryrun shows the zferry
command lines and runs nothing; --dryrun runs them without changing anything.
"""

from __future__ import annotations

import sys

from zferry.cli import jobrunner

root_dataset_pairs = ["tank/media", "/usb/backups/media", "tank/documents", "/usb/backups/documents"]
host = "localhost"
target = ""
src_hosts = [host]
dst_hosts = {host: [target]}
retain_dst_targets = {host: [target]}
dst_root_datasets = {host: ""}
org = "home"
src_snapshot_plan = {org: {target: {"daily": 31, "weekly": 12}}}
dst_snapshot_plan = {org: {target: {"daily": 90, "weekly": 52}}}
monitor_snapshot_plan = {org: {target: {"daily": {"warning": "8 days", "critical": "15 days"}}}}


def arguments() -> list[str]:
    """The jobrunner command line this configuration stands for (verbs come from the caller)."""
    return [
        *root_dataset_pairs,
        *["--src-hosts", repr(src_hosts), "--dst-hosts", repr(dst_hosts)],
        *["--retain-dst-targets", repr(retain_dst_targets), "--dst-root-datasets", repr(dst_root_datasets)],
        *["--src-snapshot-plan", repr(src_snapshot_plan), "--dst-snapshot-plan", repr(dst_snapshot_plan)],
        *["--monitor-snapshot-plan", repr(monitor_snapshot_plan)],
        *["--workers", "1", "--job-id", "sam-usb"],
    ]


if __name__ == "__main__":
    sys.exit(jobrunner.main(arguments() + sys.argv[1:]))
