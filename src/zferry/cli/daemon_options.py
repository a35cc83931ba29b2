"""Command-line options of daemon mode and the metrics file: argparse types that check ranges, and
the typed settings they become."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Optional

from zferry.errors import UsageError
from zferry.lifecycle.periods import PERIOD_MILLISECONDS, Period, check_schedulable, parse_period

if TYPE_CHECKING:
    from zferry.daemon import DaemonSettings

# zferry.daemon and the duration parser (zferry.select.times) are imported only when a daemon
# option is given: a single run does without them, and start-up time counts (bench/).

DEFAULT_FREQUENCY = "minutely"


def duration(text: str) -> float:
    """An argparse `type`: a positive duration such as `300seconds`, `1hours`, `1days`."""
    from zferry.select.times import parse_duration

    try:
        seconds = parse_duration(text, "--daemon-lifetime")
    except UsageError:
        seconds = 0.0
    if seconds <= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration; give a whole number and a unit, e.g. 300seconds, 90minutes, 1hours, 1days"
        )
    return seconds


def frequency(text: str) -> Period:
    """An argparse `type`: a period of secondly or longer that divides a day (`10secondly`, `hourly`)."""
    period = parse_period(text.strip())
    if period is None or period.milliseconds < PERIOD_MILLISECONDS["secondly"]:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a period; give e.g. secondly, 10secondly, minutely, 15minutely, hourly, daily"
        )
    try:
        check_schedulable(period, "--daemon-frequency")
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return period


def add_daemon_options(parser: argparse.ArgumentParser) -> None:
    """The 'daemon mode and metrics' option group."""
    group = parser.add_argument_group("daemon mode and metrics")
    group.add_argument(
        "--daemon-lifetime",
        type=duration,
        metavar="DURATION",
        help="run the job again and again for this long in one process, reusing ssh connections, host probes "
        "and snapshot caches, e.g. --daemon-lifetime 1days (units: seconds, minutes, hours, days, weeks)",
    )
    group.add_argument(
        "--daemon-frequency",
        type=frequency,
        metavar="PERIOD",
        help=f"with --daemon-lifetime, run on each boundary of this period, aligned to the clock; a run that "
        f"overruns skips the boundaries it missed (default: {DEFAULT_FREQUENCY}), e.g. --daemon-frequency 10secondly",
    )
    group.add_argument(
        "--metrics-file",
        metavar="PATH",
        help="after each run, write per-pair metrics in Prometheus text format to PATH atomically, for "
        "node_exporter's textfile collector, e.g. --metrics-file /var/lib/node_exporter/zferry.prom",
    )


def build_daemon_settings(args: argparse.Namespace) -> Optional[DaemonSettings]:
    """Daemon settings when --daemon-lifetime is given; None for a single run."""
    if args.daemon_lifetime is None:
        if args.daemon_frequency is not None:
            raise UsageError("--daemon-frequency needs --daemon-lifetime (how long the daemon runs), e.g. 1days")
        return None
    from zferry.daemon import DaemonSettings

    return DaemonSettings(args.daemon_lifetime, args.daemon_frequency or Period(1, DEFAULT_FREQUENCY))
