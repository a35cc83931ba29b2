#!/usr/bin/env python3
"""Chaos benchmark: 30 kill -9s of zferry's whole process tree at random moments (seeded) while it
replicates a tree of 20 datasets, 200 MiB of incompressible data, pull-push through real ssh with
snapshot creation, bookmarks and pruning on; then one clean run. Prints the bytes `zfs receive` got
more than once (re-sent) as a fraction of the tree, the time the clean run needed to recover, and
the whole chaos time. The invariants (replica identical by GUID, no holds but the steady-state ones,
no process, socket or lock left) are asserted by the test it runs:
tests/integration/test_chaos.py::test_thirty_kills_of_the_whole_tree_on_200_mib.

Run: python3 bench/bench_chaos.py [--seed N] [--kills N]   (starts the test VM if needed)
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--kills", type=int, default=30)
    args = parser.parse_args()
    env = dict(
        os.environ,
        ZFERRY_CHAOS_SEED=str(args.seed),
        ZFERRY_CHAOS_KILLS=str(args.kills),
        ZFERRY_VM_CHECKOUT=os.environ.get("ZFERRY_VM_CHECKOUT", "/opt/zferry"),
        ZFERRY_KEEP_VM=os.environ.get("ZFERRY_KEEP_VM", "1"),
        ZFERRY_COVERAGE="0",
    )
    test = "tests/integration/test_chaos.py::test_thirty_kills_of_the_whole_tree_on_200_mib"
    argv = [sys.executable, "-m", "pytest", test, "-m", "slow", "-s", "-q", "-p", "no:cacheprovider"]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    match = re.search(r"^CHAOS (\{.*?\}) resent fraction", proc.stdout, re.M)
    if match is None:
        print(proc.stdout[-5000:], proc.stderr[-2000:], sep="\n")
        sys.exit(f"the chaos test failed (exit {proc.returncode})")
    figures = ast.literal_eval(match.group(1))
    tree, resent = figures["tree_bytes"], figures["resent_bytes"]
    print(
        f"chaos, seed {args.seed}: {figures['kills']} kill -9s of the whole process tree, tree {tree / 2**20:.1f} MiB"
    )
    print(f"  re-sent: {resent / 2**20:.2f} MiB = {resent / tree:.2%} of the tree (limit 10 %)")
    print(f"  recovery (the clean runs after the last kill): {figures['recovery']:.1f} s")
    print(f"  whole chaos: {figures['seconds']:.0f} s; invariants held: {'passed' in proc.stdout}")


if __name__ == "__main__":
    main()
