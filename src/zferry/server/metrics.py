"""`GET /v1/metrics`: the server's tasks and replicated pairs in the Prometheus text format. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional

from zferry.observe.metrics import escape_label
from zferry.server.tasks import FINAL, PairRecord, Task

STATES = ("queued", "running", "succeeded", "failed", "cancelled")


def _line(name: str, labels: dict[str, str], value: Optional[float]) -> str:
    text = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items())
    shown = "NaN" if value is None else (str(int(value)) if float(value).is_integer() else f"{value:.3f}")
    return f"{name}{{{text}}} {shown}" if text else f"{name} {shown}"


def render(tasks: Iterable[Task], pairs: Iterable[PairRecord], now: float) -> str:
    """Task counts by state, running tasks' bytes, each pair's lag and last result."""
    tasks = list(tasks)
    lines = [
        "# HELP zferry_server_tasks Tasks the server remembers, by state.",
        "# TYPE zferry_server_tasks gauge",
    ]
    lines += [_line("zferry_server_tasks", {"state": s}, sum(t.state == s for t in tasks)) for s in STATES]
    lines += [
        "# HELP zferry_server_task_bytes_done Bytes a running task has moved so far.",
        "# TYPE zferry_server_task_bytes_done gauge",
    ]
    lines += [
        _line("zferry_server_task_bytes_done", {"task": t.id, "kind": t.kind}, t.bytes_done)
        for t in tasks
        if t.state not in FINAL
    ]
    lines += [
        "# HELP zferry_server_pair_lag_seconds Age of the newest snapshot the target has.",
        "# TYPE zferry_server_pair_lag_seconds gauge",
        "# HELP zferry_server_pair_last_success 1 when the pair's last replicate succeeded.",
        "# TYPE zferry_server_pair_last_success gauge",
    ]
    for pair in pairs:
        labels = {"source": pair.source, "target": pair.target}
        lines.append(_line("zferry_server_pair_lag_seconds", labels, pair.to_json(now)["lag_seconds"]))
        lines.append(_line("zferry_server_pair_last_success", labels, float(pair.last_result == "succeeded")))
    return "\n".join(lines) + "\n"
