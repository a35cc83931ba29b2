#!/usr/bin/env python3
"""The floor under zferry's fixed cost: the zfs steps of a first run, from Python, with nothing else.

Run inside the VM by `bench_replication.py --only fixed` as `python3 bench/fixed_floor.py SRC DST`:
the same zfs processes a first zferry run of a one-snapshot dataset starts, in the same order and
overlap (the two dataset listings at once, then the source's snapshots; the source's hold beside
`zfs send | zfs receive`; the bookmark beside the destination's hold), but with only the standard
library imported and no planning, checks or logs. What zferry costs beyond this is its own code.
"""

from __future__ import annotations

import subprocess
import sys

TAG = "zferry-floor"


def main() -> None:
    src, dst = sys.argv[1:3]
    datasets = ["zfs", "list", "-H", "-p", "-t", "filesystem,volume", "-o", "name,guid", "-r"]
    listings = [
        subprocess.Popen([*datasets, name], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) for name in (src, dst)
    ]
    for listing in listings:
        listing.communicate()
    versions = ["zfs", "list", "-H", "-p", "-t", "snapshot,bookmark", "-o", "name,guid,createtxg", "-d", "1", src]
    latest = subprocess.run(versions, stdout=subprocess.PIPE, text=True, check=True).stdout.split()[-3]
    snapshot = latest.partition("@")[2]
    hold = subprocess.Popen(["zfs", "hold", TAG, latest])
    send = subprocess.Popen(["zfs", "send", latest], stdout=subprocess.PIPE)
    subprocess.run(["zfs", "receive", "-u", dst], stdin=send.stdout, check=True)
    if send.wait() or hold.wait():
        sys.exit("zfs send or zfs hold failed")
    after = [
        subprocess.Popen(["zfs", "bookmark", latest, f"{src}#{snapshot}"]),
        subprocess.Popen(["zfs", "hold", TAG, f"{dst}@{snapshot}"]),
    ]
    if any(step.wait() for step in after):
        sys.exit("zfs bookmark or zfs hold failed")


if __name__ == "__main__":
    main()
