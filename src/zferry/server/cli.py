"""`zferry-server`: parse and check the options, then serve the API with uvicorn.

SIGTERM and SIGINT cancel every task (their process trees on both hosts are terminated) before
uvicorn stops; the exit status is then 143 or 130, as zferry's. Bad options exit 2 before anything starts.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, Optional

from zferry import __version__, validate
from zferry.cli.main import setup_logging
from zferry.cli.numbers import seconds, whole_number
from zferry.errors import EXIT_USAGE, UsageError
from zferry.exec.ssh import check_file
from zferry.observe.audit import default_audit_path
from zferry.server.auth import read_token
from zferry.server.settings import ServerSettings

log = logging.getLogger("zferry")

EPILOG = """examples:
  zferry-server --token-file /etc/zferry/token
  zferry-server --host 0.0.0.0 --port 8080 --token-file /etc/zferry/token --export-dir /srv/streams
  zferry-server --token-file token --zfs-host root@nas1 --ssh-config-file ~/.ssh/config

  curl -H "Authorization: Bearer $(cat /etc/zferry/token)" http://127.0.0.1:8080/v1/pools
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zferry-server",
        description="REST API for zferry: send, receive and replicate ZFS snapshots as background tasks.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"zferry-server {__version__}")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1), e.g. --host 0.0.0.0"
    )
    parser.add_argument(
        "--port",
        type=whole_number(1, 65535),
        default=8080,
        help="TCP port, 1..65535 (default: 8080), e.g. --port 9090",
    )
    parser.add_argument(
        "--token-file",
        required=True,
        metavar="PATH",
        help="file holding the bearer token (mode 600, at least 16 characters), e.g. --token-file /etc/zferry/token",
    )
    parser.add_argument(
        "--zfs-host",
        metavar="[USER@]HOST",
        help="manage this host's ZFS over ssh instead of the local one, e.g. --zfs-host root@nas1",
    )
    parser.add_argument(
        "--ssh-config-file", metavar="PATH", help="ssh -F PATH for --zfs-host, e.g. --ssh-config-file ~/.ssh/config"
    )
    parser.add_argument(
        "--export-dir", metavar="DIR", help="folder the send endpoint writes files into, e.g. --export-dir /srv/out"
    )
    parser.add_argument(
        "--import-dir", metavar="DIR", help="folder the receive endpoint reads files from, e.g. --import-dir /srv/in"
    )
    parser.add_argument(
        "--audit-log",
        metavar="FILE",
        help="audit trail of forced receives and destroys (default: ~/zferry-logs/audit.jsonl), "
        "e.g. --audit-log /var/log/zferry/audit.jsonl",
    )
    parser.add_argument(
        "--task-expiry",
        type=seconds(allow_zero=False),
        default=3600.0,
        metavar="SECONDS",
        help="how long a finished task stays visible in GET /v1/tasks (default: 3600, an hour after it ended); "
        "each replicated pair's last result is kept regardless, e.g. --task-expiry 600",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-v, -v -v), e.g. -v")
    return parser


def _folder(path: Optional[str], option: str) -> Optional[str]:
    if path is not None and not os.path.isdir(path):
        raise UsageError(f"{option} {path}: not a folder; create it first")
    return os.path.realpath(path) if path is not None else None


def build_settings(args: argparse.Namespace) -> ServerSettings:
    """The server's settings from its options, every value checked."""
    user, host = None, None
    if args.zfs_host:
        who, at, name = args.zfs_host.rpartition("@")
        user = validate.username(who) if at else None
        host = validate.hostname(name)
    return ServerSettings(
        token=read_token(args.token_file),
        zfs_host=host,
        zfs_user=user,
        ssh_config_file=check_file(args.ssh_config_file, "--ssh-config-file"),
        export_dir=_folder(args.export_dir, "--export-dir"),
        import_dir=_folder(args.import_dir, "--import-dir"),
        audit_log=os.path.abspath(os.path.expanduser(args.audit_log or default_audit_path())),
        task_ttl=args.task_expiry,
    )


def serve(settings: ServerSettings, host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT; tasks are cancelled before uvicorn stops."""
    import uvicorn

    from zferry.server.app import create_app

    app = create_app(settings)
    service = app.state.service

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            log.warning("signal %d: cancelling %d task(s)", sig, len(service.store.running()))
            for task in service.store.running():
                task.cancel.set()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    try:
        Server(config).run()
    finally:
        service.shutdown()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the server with `argv` (default: the process arguments); return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        settings = build_settings(args)
    except UsageError as error:
        print(f"zferry-server: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(args.verbose, False)
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401 - only to say what is missing
    except ImportError:
        print("zferry-server: needs the server extra: pip install 'zferry[server]'", file=sys.stderr)
        return EXIT_USAGE
    serve(settings, args.host, args.port)
    return 0


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def command_line() -> None:
    """The `zferry-server` program. uvicorn hands the signal that stopped it on at the end: it exits 143/130
    like `zferry` (a signal before uvicorn's own handling likewise)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_on_signal)
    sys.exit(main())
