"""Time from SIGTERM/SIGINT to exit of a busy runner (no VM): threads and the main thread start
processes non-stop, the signal comes at a random moment. Prints latencies and hangs (none expected).

Run: PYTHONPATH=src python bench/bench_signals.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
BUSY = """
import sys, threading
from zferry.errors import ZferryError
from zferry.exec.host import LOCAL
from zferry.exec.runner import Runner, Stage
from zferry.exec.signals import SignalStop
runner = Runner()
signals = SignalStop(runner)
def busy():
    try:
        while True:
            runner.pipeline([Stage(LOCAL, ("sh", "-c", "sleep 0.01; echo x")), Stage(LOCAL, ("cat",))])
    except ZferryError:
        pass
try:
    for _ in range(3):
        threading.Thread(target=busy, daemon=True).start()
    print("started", flush=True)
    while True:
        runner.run(LOCAL, ["true"])
except ZferryError as error:
    sys.exit(error.exit_code)
finally:
    runner.terminate_all()
    signals.close()
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    runs = parser.parse_args().runs
    rand = random.Random(1)
    latencies: list[float] = []
    hangs = 0
    for index in range(runs):
        signum = (signal.SIGINT, signal.SIGTERM)[index % 2]
        env = dict(os.environ, PYTHONPATH=SRC)
        proc = subprocess.Popen(
            [sys.executable, "-c", BUSY], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
        )
        assert proc.stdout is not None
        proc.stdout.readline()
        time.sleep(rand.uniform(0, 0.3))
        sent = time.monotonic()
        proc.send_signal(signum)
        try:
            proc.wait(timeout=10)
            latencies.append(time.monotonic() - sent)
        except subprocess.TimeoutExpired:
            hangs += 1
            proc.kill()
            proc.wait()
    latencies.sort()
    print(f"{runs} interrupted runs: {hangs} hung (over 10 s)")
    if latencies:
        median = latencies[len(latencies) // 2]
        print(f"signal to exit: median {median * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
