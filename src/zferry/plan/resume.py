"""May a resume token from the destination be run on the source? Pure: the decoded token in, a reason out.

The token (`receive_resume_token` of a partial receive) comes from the destination host, which the
source must not trust: `zfs send -t TOKEN` sends whatever snapshot the token names, with the flags it
carries. A compromised backup host could name another source dataset's snapshot, or drop `rawok` to
receive an encrypted dataset's data decrypted. So the token, decoded on the source with
`zfs send -nvt`, must name a snapshot of the dataset being replicated (by name and GUID), start
from one of its snapshots or bookmarks (or a clone's origin), and be raw for an encrypted dataset.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Optional

from zferry.model import Version
from zferry.zfs import ResumeToken


def token_problem(
    token: ResumeToken,
    src_name: str,
    src_versions: Sequence[Version],
    encrypted: bool,
    other_bases: Collection[int] = (),
) -> Optional[str]:
    """Why `token` must not be resumed when replicating `src_name`; None if it may.

    `src_versions` are the source dataset's snapshots and bookmarks; `other_bases` more GUIDs an
    incremental may start from (a clone's origin snapshot).
    """
    if token.dataset != src_name:
        return f"the token names {token.toname}, which is not a snapshot of {src_name}"
    snapshots = {v.guid: v for v in src_versions if not v.is_bookmark}
    target = snapshots.get(token.toguid)
    if target is None or target.full_name != token.toname:
        return f"the token's snapshot (GUID {token.toguid:#x}) is not {src_name}'s snapshot {token.toname}"
    bases = {v.guid for v in src_versions} | set(other_bases)
    if token.fromguid and token.fromguid not in bases:
        return f"the token's incremental base (GUID {token.fromguid:#x}) is not a snapshot or bookmark of {src_name}"
    if encrypted and not token.raw:
        return f"{src_name} is encrypted and the token asks for a non-raw send, which would send its data decrypted"
    return None
