"""Export and import files stay inside their folder: no `..`, no absolute path, no symlink out of it."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Optional

from zferry.server.errors import ApiError, bad_request

_MAX_PATH = 1024


def relative_parts(name: str) -> tuple[str, ...]:
    """The components of a client's relative file name, refused when it could leave its folder. Pure."""
    if not name or len(name) > _MAX_PATH or "\0" in name or "\\" in name:
        raise bad_request(f"invalid file name {name[:80]!r}", "give a relative path such as 'daily/tank-data.zfs'")
    if name.startswith("/"):
        raise bad_request(f"invalid file name {name!r}: absolute", "give a path relative to the server's folder")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if not parts or ".." in parts:
        raise bad_request(f"invalid file name {name!r}: '..' is not allowed", "name a file inside the folder")
    return parts


def confine(base: Optional[str], name: str, option: str) -> Path:
    """`name` resolved inside `base` (symlinks followed); refused if it ends up elsewhere.

    The file itself need not exist (a send creates it); its folder must.
    """
    if base is None:
        raise ApiError(
            422, f"this server has no {option}", f"start zferry-server with {option} DIR to read or write files"
        )
    root = Path(os.path.realpath(base))
    candidate = Path(os.path.realpath(root.joinpath(*relative_parts(name))))
    if candidate != root and root not in candidate.parents:
        raise bad_request(f"{name!r} leads outside {option} (a symlink?)", "name a file inside the folder")
    if not candidate.parent.is_dir():
        raise ApiError(404, f"no folder for {name!r} in {option}", "create the folder first")
    return candidate


def open_new(path: Path, dir_fd: Optional[int] = None) -> int:
    """Create `path` (in the directory `dir_fd`, when given) for writing, refusing an existing file or a
    symlink placed there meanwhile."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except FileExistsError:
        raise ApiError(409, f"{path.name} exists", "choose another output_path or remove the old file") from None


def open_existing(path: Path, dir_fd: Optional[int] = None) -> int:
    """Open a regular file (in the directory `dir_fd`, when given) for reading, never through a symlink."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        raise ApiError(404, f"{path.name} does not exist", "check input_path") from None
    except OSError as error:
        raise bad_request(f"cannot open {path.name}: {error.strerror}", "give a regular file") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise bad_request(f"{path.name} is not a regular file", "give a regular file")
    return fd
