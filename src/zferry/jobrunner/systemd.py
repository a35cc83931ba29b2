"""Pure: the files of a scheduled jobrunner run: a systemd timer and service, a logrotate file, a cron line.

The service runs the jobrunner once (oneshot) as an unprivileged user whose rights come from
`zfs allow` (so no sudo: `--no-privilege-elevation`, which `NoNewPrivileges=` requires anyway),
restarts it on failure 5 minutes later at most 3 times an hour, logs to the journal and keeps its
own per-run log files in `LogsDirectory=`. Hardening leaves `/dev/zfs` reachable and receives
unmounted (zferry receives with `-u`), so a read-only file system (`ProtectSystem=strict`) is fine.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from zferry.errors import UsageError

DEFAULT_ON_CALENDAR = "*-*-* 03:55:00"
DEFAULT_USER = "zferry"
LOG_DIR = "/var/log/zferry"
LOCK_DIR = "/run/zferry"
_SAFE = re.compile(r"[A-Za-z0-9_@.,:/=+-]+")
_CALENDAR = re.compile(r"[A-Za-z0-9*:.,/~ -]+")


@dataclass(frozen=True)
class Schedule:
    """What the emitted files say: the unit name, when, as whom, and the command to run."""

    name: str  # unit name without suffix, e.g. zferry-nightly
    command: tuple[str, ...]  # absolute program and its arguments
    on_calendar: str = DEFAULT_ON_CALENDAR
    user: str = DEFAULT_USER


def check_calendar(text: str) -> str:
    """An `OnCalendar=` value: the characters systemd's calendar syntax uses, nothing else."""
    if not text.strip() or not _CALENDAR.fullmatch(text):
        raise UsageError(f"--systemd-on-calendar: {text!r} is not a calendar spec such as '*-*-* 03:55:00' or daily")
    return text


def service_command(argv: Sequence[str]) -> list[str]:
    """The jobrunner arguments for the service: explicit log and lock dirs, no sudo; never a force option."""
    forced = [w for w in argv if w.startswith("--force")]
    if forced:
        raise UsageError(f"{forced[0]}: a scheduled run never forces; drop it (see README, Safety promises)")
    extra = []
    if not any(w.split("=")[0] == "--log-dir" for w in argv):
        extra += ["--log-dir", LOG_DIR]
    if not any(w.split("=")[0] == "--lock-dir" for w in argv):
        extra += ["--lock-dir", LOCK_DIR]
    if "--no-privilege-elevation" not in argv:
        extra.append("--no-privilege-elevation")
    return [*argv, *extra]


def exec_quote(word: str) -> str:
    """One word of an `ExecStart=` line: quoted as systemd reads it, `%` and `$` escaped."""
    if not _SAFE.fullmatch(word):
        word = '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word.replace("%", "%%").replace("$", "$$")


def service(schedule: Schedule) -> str:
    """The oneshot `.service` unit."""
    exec_start = " ".join(exec_quote(w) for w in schedule.command)
    return f"""[Unit]
Description=zferry-jobrunner {schedule.name}
Wants=network-online.target
After=network-online.target
StartLimitIntervalSec=1h
StartLimitBurst=3

[Service]
Type=oneshot
User={schedule.user}
ExecStart={exec_start}
Restart=on-failure
RestartSec=5min
StandardOutput=journal
StandardError=journal
SyslogIdentifier={schedule.name}
LogsDirectory=zferry
LogsDirectoryMode=0700
CacheDirectory=zferry
CacheDirectoryMode=0700
RuntimeDirectory=zferry
RuntimeDirectoryMode=0700
Environment=XDG_CACHE_HOME=/var/cache
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
DevicePolicy=closed
DeviceAllow=/dev/zfs rw
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
SystemCallArchitectures=native
"""


def timer(schedule: Schedule) -> str:
    """The `.timer` unit: daily around 04:00 by default, catching up a missed run after boot."""
    return f"""[Unit]
Description=Start {schedule.name}.service on schedule

[Timer]
OnCalendar={schedule.on_calendar}
RandomizedDelaySec=10min
Persistent=true
Unit={schedule.name}.service

[Install]
WantedBy=timers.target
"""


def logrotate(schedule: Schedule) -> str:
    """Rotation of the files that keep growing (the audit trail); per-run logs are kept by zferry."""
    return f"""{LOG_DIR}/*.jsonl {{
    daily
    rotate 14
    compress
    delaycompress
    missingok
    notifempty
    create 0600 {schedule.user} {schedule.user}
    su {schedule.user} {schedule.user}
}}
"""


def cron(schedule: Schedule) -> str:
    """An /etc/cron.d line for systems without systemd: 03:55 daily, as the same user."""
    command = shlex.join(schedule.command).replace("%", "\\%")  # cron reads % as a newline
    comment = f"# {schedule.name}: zferry-jobrunner without systemd (a file in /etc/cron.d)"
    return f"{comment}\n55 3 * * * {schedule.user} {command}\n"


def files(schedule: Schedule) -> dict[str, str]:
    """File name -> content of everything `--emit-systemd` writes."""
    return {
        f"{schedule.name}.service": service(schedule),
        f"{schedule.name}.timer": timer(schedule),
        f"{schedule.name}.logrotate": logrotate(schedule),
        f"{schedule.name}.cron": cron(schedule),
    }


def drop_options(argv: Sequence[str], options: Sequence[str]) -> list[str]:
    """`argv` without the given options (each with its one value, as `--opt V` or `--opt=V`)."""
    out: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in options:
            skip = True
        elif word.split("=", 1)[0] not in options:
            out.append(word)
    return out
