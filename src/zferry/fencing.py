"""Fencing: the disaster-recovery state a dataset carries, and whether a replication may run.

Each site's root dataset of a DR group holds two user properties: `zferry:dr-role` (primary,
standby or fenced) and `zferry:dr-epoch` (a non-negative integer that only grows: the fencing
token). A promoted standby gets a higher epoch than the primary it replaced, so a stale primary
that comes back cannot overwrite it: the engine refuses to receive into a dataset whose epoch is
higher than the sender's, and to send from a fenced dataset, whatever force flags it gets.

Pure: parsing property values and deciding; reading and writing them is the caller's job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from zferry.errors import ZferryError
from zferry.model import Dataset

ROLE_PROPERTY = "zferry:dr-role"
EPOCH_PROPERTY = "zferry:dr-epoch"
DR_PROPERTIES = (ROLE_PROPERTY, EPOCH_PROPERTY)

ROLE_PRIMARY = "primary"
ROLE_STANDBY = "standby"
ROLE_FENCED = "fenced"
ROLES = (ROLE_PRIMARY, ROLE_STANDBY, ROLE_FENCED)

_UNSET = ("", "-")  # what `zfs list`/`zfs get` print for a user property that is not set
_EPOCH = re.compile(r"[0-9]{1,18}")  # decimal, no sign; fits an int64 with room to grow


class DrStateError(ZferryError):
    """A DR state property holds a value zferry cannot read; nothing was sent."""


class FencingRefused(ZferryError):
    """The DR state of the pair forbids this replication (fenced source, or a newer destination)."""


@dataclass(frozen=True)
class DrState:
    """The DR state of one dataset. None: the property is not set (not part of a DR group)."""

    role: Optional[str] = None
    epoch: Optional[int] = None

    def as_properties(self) -> dict[str, str]:
        """The property values to `zfs set` for the fields that are set."""
        values: dict[str, str] = {}
        if self.role is not None:
            values[ROLE_PROPERTY] = self.role
        if self.epoch is not None:
            values[EPOCH_PROPERTY] = str(self.epoch)
        return values


def parse_role(value: Optional[str], dataset: str = "") -> Optional[str]:
    """`zferry:dr-role` as printed by zfs: None when unset, else one of ROLES."""
    if value is None or value.strip() in _UNSET:
        return None
    role = value.strip()
    if role not in ROLES:
        raise DrStateError(
            f"{_where(dataset)}{ROLE_PROPERTY}={value!r} is not one of {', '.join(ROLES)}: "
            f"fix it with `zfs set {ROLE_PROPERTY}=...` (see `zferry-dr status`) or clear it with "
            f"`zfs inherit {ROLE_PROPERTY}`"
        )
    return role


def parse_epoch(value: Optional[str], dataset: str = "") -> Optional[int]:
    """`zferry:dr-epoch` as printed by zfs: None when unset, else a non-negative integer."""
    if value is None or value.strip() in _UNSET:
        return None
    text = value.strip()
    if not _EPOCH.fullmatch(text):
        raise DrStateError(
            f"{_where(dataset)}{EPOCH_PROPERTY}={value!r} is not a non-negative integer: "
            f"fix it with `zfs set {EPOCH_PROPERTY}=N` (see `zferry-dr status`) or clear it with "
            f"`zfs inherit {EPOCH_PROPERTY}`"
        )
    return int(text)


def parse_dr_state(properties: Mapping[str, str], dataset: str = "") -> DrState:
    """The DrState from a dataset's property values (missing keys count as unset)."""
    return DrState(
        parse_role(properties.get(ROLE_PROPERTY), dataset),
        parse_epoch(properties.get(EPOCH_PROPERTY), dataset),
    )


def check_replication(source: DrState, destination: DrState) -> Optional[str]:
    """Why replicating from `source` into `destination` must not happen, or None if it may.

    A fenced source never sends. A destination with an epoch refuses a sender whose epoch is
    lower (a sender without one counts as epoch 0). A destination without an epoch accepts
    anything: it is not (yet) part of a DR group.
    """
    if source.role == ROLE_FENCED:
        return (
            f"the source is fenced ({ROLE_PROPERTY}={ROLE_FENCED}): another site was promoted "
            "and this one must not send; run `zferry-dr status` to see the current primary and "
            "`zferry-dr failback` to bring this site back as a standby"
        )
    if destination.epoch is None:
        return None
    source_epoch = source.epoch if source.epoch is not None else 0
    if destination.epoch > source_epoch:
        shown = str(source.epoch) if source.epoch is not None else "unset, counts as 0"
        return (
            f"the destination's {EPOCH_PROPERTY} {destination.epoch} is higher than the source's "
            f"({shown}): the destination was promoted after the source, and receiving would "
            "overwrite it (a stale primary); no force option overrides this; run "
            "`zferry-dr status` to see the current primary and replicate from it, or "
            "`zferry-dr failback` to bring the source back as a standby"
        )
    return None


def state_of(dataset: Optional[Dataset]) -> DrState:
    """The DR state a listed dataset carries in its `user_props` (unset when it does not exist)."""
    return DrState() if dataset is None else parse_dr_state(dataset.user_props, dataset.name)


def refusal(source: Optional[Dataset], destination: Optional[Dataset]) -> Optional[str]:
    """Why the engine must not replicate between these listed roots (a malformed state too), or None."""
    try:
        return check_replication(state_of(source), state_of(destination))
    except DrStateError as error:
        return str(error)


def _where(dataset: str) -> str:
    return f"{dataset}: " if dataset else ""
