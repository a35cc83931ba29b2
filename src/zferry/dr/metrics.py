"""DR metrics in the Prometheus text format (node_exporter's textfile collector): role, epoch,
reachability, lag and divergence per group and site. Rendering is pure; `write` replaces the file."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from zferry.dr.status import GroupStatus
from zferry.fencing import ROLES
from zferry.observe.metrics import escape_label, write_atomically

_FAMILIES = (
    ("zferry_dr_role", "1 for the role the site's root carries (label role)."),
    ("zferry_dr_epoch", "The site's fencing epoch (zferry:dr-epoch)."),
    ("zferry_dr_reachable", "1 if the site could be read, else 0."),
    ("zferry_dr_lag_seconds", "Age of the site's latest snapshot in common with the primary."),
    ("zferry_dr_diverged", "1 if the site holds snapshots or writes the primary lacks."),
)


def render(groups: Sequence[GroupStatus]) -> str:
    """The exposition text for the statuses of some groups."""
    lines: list[str] = []
    for name, help_text in _FAMILIES:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for group in groups:
            for site in group.sites:
                labels = f'group="{escape_label(group.name)}",site="{escape_label(site.name)}"'
                if name == "zferry_dr_role":
                    lines += [f'{name}{{{labels},role="{r}"}} {int(site.role == r)}' for r in ROLES]
                    continue
                value: Optional[float] = {
                    "zferry_dr_epoch": None if site.epoch is None else float(site.epoch),
                    "zferry_dr_reachable": float(site.reachable),
                    "zferry_dr_lag_seconds": site.lag_seconds,
                    "zferry_dr_diverged": float(site.diverged),
                }[name]
                if value is not None:
                    lines.append(f"{name}{{{labels}}} {_number(value)}")
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"


def write(path: str, groups: Sequence[GroupStatus]) -> None:
    """Replace `path` atomically with the metrics of `groups`."""
    write_atomically(path, render(groups))
