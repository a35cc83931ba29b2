"""zferry keeps a hold on the latest common snapshot (`zferry-<hash>`); a test that destroys
such a snapshot out of band first releases it, as an administrator would."""

from __future__ import annotations


def release_zferry_holds(root: str) -> str:
    """Shell lines that release every zferry hold on the snapshots under `root`."""
    return (
        f"zfs list -H -t snapshot -o name -r {root} | xargs -r zfs holds -H "
        "| awk -F'\\t' '$2 ~ /^zferry-/ {print $2 \" \" $1}' | xargs -r -n2 zfs release\n"
    )
