"""The jobrunner's shared ssh connections: one pool per ssh settings, none after close."""

from __future__ import annotations

from dataclasses import replace

from zferry.engine import JobConfig
from zferry.exec.ssh import SshSettings
from zferry.jobrunner.connections import SharedConnections


def test_sub_jobs_with_the_same_settings_share_one_pool_until_closed() -> None:
    shared = SharedConnections()
    job = JobConfig(())
    first = shared.get(job)
    assert first is not None and shared.get(replace(job, job_name="other")) is first
    assert shared.get(replace(job, ssh=SshSettings(connect_timeout=3))) is not first
    shared.close()
    assert shared.get(job) is None  # a sub-job started after a stop makes (and closes) its own
