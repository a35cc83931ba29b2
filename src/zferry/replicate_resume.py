"""Finishing an interrupted receive from its resume token, or discarding the partial state when it
cannot be used."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Optional

from zferry import destructive, zfs
from zferry.errors import CommandError
from zferry.model import Dataset
from zferry.observe import audit
from zferry.plan import send_flags
from zferry.plan.clones import find_version
from zferry.plan.resume import token_problem
from zferry.replicate_send import Sender

if TYPE_CHECKING:
    from zferry.replicate import ReplicationConfig

log = logging.getLogger("zferry")


class Resumer:
    """Resumes the partial receives of one pair's destination, sending through `sender`."""

    def __init__(self, config: ReplicationConfig, sender: Sender) -> None:
        self.config = config
        self.sender = sender
        self.runner = sender.runner
        self.lists = sender.lists

    def resume(self, src_name: str, dst_dataset: Dataset) -> tuple[Optional[Dataset], bool]:
        """Finish an interrupted receive; discard the partial state only when it cannot be used.

        Returns the destination dataset as it is now, and whether the resumed stream completed.
        The token is checked on the source first (`plan.resume`). Only an error that says the token
        is unusable discards the state; any other (a kill, a full pool, the network) keeps it for
        the next attempt or run.
        """
        token = dst_dataset.resume_token
        assert token is not None
        if not self.config.resume:
            reason = "--no-resume-recv: the transfer starts over"
            return self._discard_partial(dst_dataset.name, reason), False
        problem, decoded = self._token_problem(src_name, token)
        if problem is not None:
            return self._discard_partial(dst_dataset.name, f"not resuming: {problem}"), False
        log.info("%s: resuming an interrupted transfer into %s", src_name, dst_dataset.name)
        record = send_flags.resumed_record(decoded)
        try:
            send = zfs.send_resume(token, self.config.send_options)
            self.sender.transfer(send, src_name, dst_dataset.name, force=False, full=False, record=record)
        except CommandError as error:
            if self.config.dryrun or not zfs.is_unusable_token_error(error):
                raise
            return self._discard_partial(dst_dataset.name, f"cannot resume ({error})"), False
        return self.lists.relist_dst(dst_dataset.name), True

    def _token_problem(self, src_name: str, token: str) -> tuple[Optional[str], Optional[zfs.ResumeToken]]:
        """Decode the destination's token on the source (`zfs send -nvt`); why it must not be used, if so."""
        src = self.sender.src
        try:
            out = self.runner.run(src.host, zfs.send_resume_describe(token), classify=zfs.classify_error)
        except CommandError as error:
            if zfs.is_unusable_token_error(error):
                return str(error), None
            raise
        decoded = zfs.parse_resume_token(out)
        if decoded is None:
            return "zfs send -nvt did not show the token's contents", None
        inventory = self.lists.src
        dataset = inventory.datasets.get(src_name)
        versions = inventory.versions.get(src_name, ())
        origin = find_version(dataset.origin if dataset else None, inventory.versions)
        return token_problem(
            decoded,
            src_name,
            versions,
            dataset is not None and dataset.is_encrypted,
            () if origin is None else (origin.guid,),
        ), decoded

    def _discard_partial(self, dst_name: str, reason: str) -> Optional[Dataset]:
        log.warning("%s: %s; discarding the partial receive (zfs receive -A) and starting over", dst_name, reason)
        dst = self.sender.dst
        destructive.run(self.runner, dst.host, zfs.receive_abort(dst_name), audit.ABORT_RECEIVE, (dst_name,), reason)
        return self.lists.relist_dst(dst_name)
