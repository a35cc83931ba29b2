"""Options for remote hosts, privileges, the transfer pipeline, properties and the child environment."""

from __future__ import annotations

import argparse
import os
import re
from typing import Optional

from zferry import validate
from zferry.cli.numbers import whole_number
from zferry.errors import UsageError
from zferry.exec.ssh import SshSettings, SshSide, check_extra_options, check_file
from zferry.plan.properties import PropertyRule, PropertyRules, check_property_names, parse_sources, parse_targets
from zferry.select.regex import NameFilter, compile_patterns
from zferry.stream_policy import COMPRESS_WHEN
from zferry.transfer import MBUFFER_MIN_SIZE, StreamOptions, byte_count

_PROGRAM = re.compile(r"[A-Za-z0-9_./+\-]+")
_RATE = re.compile(r"[0-9]+(\.[0-9]+)?[kKmMgGtT]?")


def add_remote_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "remote hosts (ssh)",
        "An endpoint [[user@]host:]dataset is reached over ssh; all commands to a host share one "
        "ControlMaster connection, closed when zferry exits. The --ssh-src-*/--ssh-dst-* options "
        "override the user, host and port given in the endpoint.",
    )
    group.add_argument("--ssh-program", default="ssh", metavar="PROG", help="ssh client to use (default: ssh)")
    group.add_argument("--ssh-cipher", metavar="CIPHER", help="ssh -c CIPHER, e.g. aes128-gcm@openssh.com")
    group.add_argument(
        "--ssh-control-persist-secs",
        type=whole_number(1),
        default=90,
        metavar="S",
        help="ignored: master connections are zferry's children and live as long as the run",
    )
    for side in ("src", "dst"):
        where = "source" if side == "src" else "destination"
        group.add_argument(f"--ssh-{side}-user", metavar="USER", help=f"log in to the {where} host as USER")
        group.add_argument(f"--ssh-{side}-host", metavar="HOST", help=f"reach the {where} at HOST (name or address)")
        group.add_argument(
            f"--ssh-{side}-port", metavar="PORT", help=f"ssh port of the {where} host, 1 to 65535 (default: 22)"
        )
        group.add_argument(f"--ssh-{side}-config-file", metavar="FILE", help="ssh -F FILE")
        group.add_argument(f"--ssh-{side}-private-key", metavar="FILE", help="ssh -i FILE")
        group.add_argument(
            f"--ssh-{side}-extra-opts",
            default="",
            metavar="OPTS",
            help="more ssh options; only -o Key=value from an allow-list (no ProxyCommand, "
            "LocalCommand, ...), -c, -4, -6, -C",
        )

    privileges = parser.add_argument_group("privileges")
    privileges.add_argument(
        "--sudo-program",
        default="sudo",
        metavar="PROG",
        help="prepended (with -n) to zfs commands on a host where we are not root (default: sudo)",
    )
    privileges.add_argument(
        "-p",
        "--no-privilege-elevation",
        action="store_true",
        help="never use sudo: the user has the rights it needs via 'zfs allow'",
    )

    stream = parser.add_argument_group("the transfer pipeline")
    stream.add_argument(
        "--compression-program",
        default="zstd",
        metavar="PROG",
        help="compress streams that cross the network when present on both ends (default: zstd; '-' turns it off)",
    )
    stream.add_argument("--compression-program-opts", default="-1", metavar="OPTS", help="default: -1")
    stream.add_argument(
        "--compress-when",
        choices=COMPRESS_WHEN,
        default="auto",
        help="auto (default): compress a stream only where it pays: not when the source dataset is compressed "
        "with a refcompressratio below 1.10 (incompressible data), nor a -c/-w send of a compressed dataset, nor a "
        "raw send of an encrypted one; always: every stream that crosses the network, e.g. --compress-when always",
    )
    stream.add_argument(
        "--mbuffer-program",
        default="mbuffer",
        metavar="PROG",
        help="buffer both ends of a network hop when present (default: mbuffer; '-': off)",
    )
    stream.add_argument(
        "--mbuffer-size",
        default="128M",
        metavar="SIZE",
        help="mbuffer's memory at each end (default: 128M; 1 MiB blocks when it holds five, else 128k)",
    )
    stream.add_argument(
        "--pv-program",
        default="pv",
        metavar="PROG",
        help="meter for progress and --bwlimit on this machine (default: pv; '-': off)",
    )
    stream.add_argument(
        "--bwlimit",
        metavar="RATE",
        help="limit each transfer to RATE bytes/s, e.g. 10m, 500k (with pv, else with mbuffer -r)",
    )
    stream.add_argument("--no-progress", action="store_true", help="do not report transfer progress")
    stream.add_argument(
        "--progress-interval",
        type=whole_number(1),
        default=None,
        metavar="S",
        help="seconds between progress reports (default: 1 on a terminal, 30 in logs)",
    )

    props = parser.add_argument_group("properties on the destination")
    props.add_argument(
        "--preserve-properties",
        action="append",
        default=[],
        metavar="PROP[,PROP...]",
        help="never take these properties from the stream (zfs receive -x), e.g. "
        "mountpoint,canmount,exec,sharenfs; repeatable",
    )
    for letter, what in (
        ("o", "set them explicitly (zfs receive -o name=value)"),
        ("x", "ignore them in the stream (zfs receive -x name)"),
    ):
        props.add_argument(
            f"--zfs-recv-{letter}-include-regex",
            action="append",
            default=[],
            metavar="REGEX",
            help=f"source properties whose name matches: {what}",
        )
        props.add_argument(
            f"--zfs-recv-{letter}-exclude-regex",
            action="append",
            default=[],
            metavar="REGEX",
            help=f"but not those whose name matches (wins over --zfs-recv-{letter}-include-regex)",
        )
        props.add_argument(
            f"--zfs-recv-{letter}-sources",
            default="local",
            metavar="SOURCES",
            help="which source properties: comma list of local, inherited, received, default",
        )
        props.add_argument(
            f"--zfs-recv-{letter}-targets",
            default="full" if letter == "o" else "full+incremental",
            metavar="full|incremental|full+incremental",
            help=f"apply --zfs-recv-{letter}-* to full sends, incremental sends, or both "
            f"(default: {'full' if letter == 'o' else 'full+incremental'})",
        )

    env = parser.add_argument_group("environment of child processes")
    env.add_argument(
        "--include-envvar-regex",
        action="append",
        default=[],
        metavar="REGEX",
        help="keep only environment variables whose name matches (repeatable)",
    )
    env.add_argument(
        "--exclude-envvar-regex",
        action="append",
        default=[],
        metavar="REGEX",
        help="remove environment variables whose name matches, e.g. 'LD_.*' (wins)",
    )


def _side(args: argparse.Namespace, side: str) -> SshSide:
    def get(name: str) -> Optional[str]:
        value: Optional[str] = getattr(args, f"ssh_{side}_{name}")
        return value

    user, host, port = get("user"), get("host"), get("port")
    return SshSide(
        user=validate.username(user) if user else None,
        host=validate.hostname(host) if host else None,
        port=validate.port(port) if port else None,
        config_file=check_file(get("config_file"), f"--ssh-{side}-config-file"),
        private_key=check_file(get("private_key"), f"--ssh-{side}-private-key"),
        extra_opts=check_extra_options(get("extra_opts") or "", f"--ssh-{side}-extra-opts"),
    )


def program_name(value: str, option: str) -> Optional[str]:
    """A program name or path given in an option; `-` means none."""
    if value == "-":
        return None
    if not _PROGRAM.fullmatch(value) or value.startswith("-"):
        raise UsageError(f"{option}: {value!r} is not a program name or path")
    return value


def build_ssh_settings(args: argparse.Namespace) -> SshSettings:
    cipher = args.ssh_cipher
    if cipher is not None and not re.fullmatch(r"[A-Za-z0-9@.,\-]+", cipher):
        raise UsageError(f"--ssh-cipher: invalid cipher {cipher!r}")
    if args.ssh_control_persist_secs < 1:
        raise UsageError("--ssh-control-persist-secs must be at least 1")
    return SshSettings(
        program=program_name(args.ssh_program, "--ssh-program") or "ssh",
        cipher=cipher,
        control_persist_secs=args.ssh_control_persist_secs,
        src=_side(args, "src"),
        dst=_side(args, "dst"),
    )


def build_stream_options(args: argparse.Namespace, interactive: bool) -> StreamOptions:
    """The transfer pipeline settings, each value checked: level, rate, buffer size, helper programs."""
    level = args.compression_program_opts
    match = re.fullmatch(r"-([0-9]{1,2})|--fast(=[0-9]+)?", level)
    if not match or (match.group(1) is not None and not 1 <= int(match.group(1)) <= 19):
        raise UsageError(f"--compression-program-opts: {level!r} should be a level from -1 to -19 (or --fast=N)")
    if args.bwlimit is not None and not (_RATE.fullmatch(args.bwlimit) and byte_count(args.bwlimit) > 0):
        raise UsageError(f"--bwlimit: {args.bwlimit!r} should be a rate above 0 such as 10m or 500k (bytes per second)")
    if not re.fullmatch(r"[0-9]+[kKmMgG]?", args.mbuffer_size) or byte_count(args.mbuffer_size) < MBUFFER_MIN_SIZE:
        raise UsageError(
            f"--mbuffer-size: {args.mbuffer_size!r} should be a size of at least {MBUFFER_MIN_SIZE // 1024}k, "
            "such as 128M"
        )
    interval = args.progress_interval or (1 if interactive else 30)
    return StreamOptions(
        compression=program_name(args.compression_program, "--compression-program"),
        compression_level=level,
        compress_when=args.compress_when,
        mbuffer=program_name(args.mbuffer_program, "--mbuffer-program"),
        mbuffer_size=args.mbuffer_size,
        pv=program_name(args.pv_program, "--pv-program"),
        bwlimit=args.bwlimit,
        progress_interval=0 if args.no_progress or args.quiet else interval,
        estimate_size=interactive,
    )


def build_property_rules(args: argparse.Namespace) -> PropertyRules:
    def rule(letter: str) -> PropertyRule:
        return PropertyRule(
            NameFilter(
                compile_patterns(
                    getattr(args, f"zfs_recv_{letter}_include_regex"), f"--zfs-recv-{letter}-include-regex"
                ),
                compile_patterns(
                    getattr(args, f"zfs_recv_{letter}_exclude_regex"), f"--zfs-recv-{letter}-exclude-regex"
                ),
            ),
            parse_sources(getattr(args, f"zfs_recv_{letter}_sources"), f"--zfs-recv-{letter}-sources"),
            parse_targets(getattr(args, f"zfs_recv_{letter}_targets"), f"--zfs-recv-{letter}-targets"),
        )

    preserve = [name.strip() for text in args.preserve_properties for name in text.split(",") if name.strip()]
    return PropertyRules(check_property_names(preserve, "--preserve-properties"), rule("o"), rule("x"))


def child_environment(args: argparse.Namespace) -> Optional[dict[str, str]]:
    """The environment for child processes, or None to inherit ours unchanged."""
    if not args.include_envvar_regex and not args.exclude_envvar_regex:
        return None
    names = NameFilter(
        compile_patterns(args.include_envvar_regex, "--include-envvar-regex"),
        compile_patterns(args.exclude_envvar_regex, "--exclude-envvar-regex"),
    )
    env = {k: v for k, v in os.environ.items() if names.accepts(k)}
    env.setdefault("PATH", os.defpath)  # children must still find zfs and ssh
    return env
