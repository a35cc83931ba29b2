#!/usr/bin/env python3
"""Send one command to a running test VM's qemu monitor (HMP) and print its answer.

Usage: monitor.py RUN_DIR 'info status'
"""

import socket
import sys

PROMPT = b"(qemu) "


def _read_to_prompt(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(PROMPT):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def main() -> int:
    run_dir, command = sys.argv[1], sys.argv[2]
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(120)
        sock.connect(f"{run_dir}/monitor.sock")
        _read_to_prompt(sock)
        sock.sendall(command.encode() + b"\n")
        answer = _read_to_prompt(sock).decode(errors="replace").replace("\r", "")
    lines = answer.split("\n")[1:-1]  # first line echoes the command, last is the prompt
    print("\n".join(line for line in lines if not line.startswith("\x1b")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
