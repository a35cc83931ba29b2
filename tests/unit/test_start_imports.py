"""A plain run imports only what it uses: start-up time is most of a small run's fixed cost (bench/).

Each check runs in a fresh interpreter, because this test session has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

# Modules a plain replication does not need; an option that needs one imports it.
LAZY = ("zferry.lifecycle.plan", "zferry.select.times", "zferry.daemon")


def modules_after_parsing(*argv: str) -> set[str]:
    """The zferry modules loaded after importing the CLI and building the job of `argv` (nothing runs)."""
    script = (
        "import json, sys\n"
        "from zferry.cli import main\n"
        f"args = main.parse_arguments({list(argv)!r})\n"
        "main.build_job_config(args)\n"
        "main.build_daemon_settings(args)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('zferry'))))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env={"PYTHONPATH": str(SRC)}
    )
    return set(json.loads(proc.stdout))


def test_a_plain_run_does_not_import_plans_time_filters_or_the_daemon() -> None:
    loaded = modules_after_parsing("pool/a", "pool/b")
    assert "zferry.engine" in loaded and "zferry.lifecycle.naming" in loaded
    assert not loaded & set(LAZY)


def test_each_option_imports_what_it_needs() -> None:
    plan = "{'prod': {'onsite': {'hourly': 36}}}"
    loaded = modules_after_parsing(
        "--include-snapshot-times-and-ranks", "2 days ago..anytime", "--include-snapshot-plan", plan, "pool/a", "pool/b"
    )
    assert {"zferry.select.times", "zferry.lifecycle.plan"} <= loaded
    loaded = modules_after_parsing("--daemon-lifetime", "1hours", "pool/a", "pool/b")
    assert "zferry.daemon" in loaded
