"""What a dataset whose interrupted transfer was resumed, and which then had nothing more to send,
reports to the listeners of sent datasets (holds, bookmarks).

A run killed during the stream of a dataset's last snapshot leaves a partial receive; the next run
resumes it, and the snapshot it completes is the latest one both sides have. Without a report the
pair's hold stays on the older snapshot (and the new one gets none), and the snapshot is not
bookmarked, until some later run sends something to that dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from zferry.model import Version
from zferry.plan.replication import DatasetPlan
from zferry.plan.steps import SendStep


def completed_by_resume(
    src: str, dst: str, src_snapshots: Sequence[Version], dst_snapshots: Sequence[Version]
) -> Optional[DatasetPlan]:
    """One step to the latest destination snapshot that the source has too (by GUID), or None."""
    on_source = {v.guid: v for v in src_snapshots if not v.is_bookmark}
    common = [v for v in dst_snapshots if not v.is_bookmark and v.guid in on_source]
    if not common:
        return None
    latest = max(common, key=lambda v: v.createtxg)
    return DatasetPlan(src, dst, steps=(SendStep(None, on_source[latest.guid]),))
