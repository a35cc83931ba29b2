"""Which record flags a `zfs send` carries (`-L` large blocks, `-c` compressed, `-e` embedded): pure rules.

The flags are fixed per chain: decided at the chain's full send and recorded on the destination
dataset by that receive (`zfs receive -o zferry:send-flags=Lce`), then every incremental into it
carries the same ones. Toggling `-L` within a chain can zero files with large records on receive,
so a recorded chain refuses it. A destination without the record (received before zferry kept
one) is an existing chain: it keeps being sent as before, with only what the user asked for.

The user's own `--zfs-send-program-opts` win: when they name any of `-L`, `-c`, `-e` or `-w`,
no default flag is added (raw sends carry the blocks as they are on disk anyway).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from zferry.errors import UsageError
from zferry.model import Dataset
from zferry.plan.replication import DatasetPlan

if TYPE_CHECKING:
    from zferry.replicate import ReplicationConfig
    from zferry.zfs import ResumeToken

FLAGS_PROPERTY = "zferry:send-flags"
CHAIN_LETTERS = "Lce"  # the flags a chain keeps, in the order they are written
NONE = "none"  # the recorded value of a chain sent without any of them
DEFAULT = "Lce"  # measured in bench/bench_replication.py (see bench/README.md): the fastest, nothing lost
_LONG = {"--large-block": "L", "--compressed": "c", "--embed": "e", "--raw": "w"}


def letters(options: Sequence[str]) -> str:
    """The chain letters (and `w` for raw) among `zfs send` options, also inside combined ones (-wc)."""
    found = set()
    for word in options:
        if word in _LONG:
            found.add(_LONG[word])
        elif word.startswith("-") and not word.startswith("--"):
            found.update(word[1:])
    return "".join(c for c in CHAIN_LETTERS + "w" if c in found)


def parse_letters(text: str, option: str = "--zfs-send-default-flags") -> str:
    """A user's choice of default flags: letters out of `Lce` (also as `-L -c -e`), or `none`."""
    words = text.replace(",", " ").split()
    if words == [NONE]:
        return ""
    chosen = "".join(w[1:] if w.startswith("-") else w for w in words)
    if not chosen or set(chosen) - set(CHAIN_LETTERS):
        raise UsageError(
            f"{option}: {text!r} should be letters out of {CHAIN_LETTERS} (-L large blocks, -c compressed, "
            f"-e embedded), e.g. Lce or Lc, or {NONE!r}"
        )
    return "".join(c for c in CHAIN_LETTERS if c in chosen)


def record_value(chain: str) -> str:
    """What the destination records for a chain with these letters."""
    return chain or NONE


def recorded_letters(value: Optional[str]) -> Optional[str]:
    """The letters a destination's record names; None when there is no (valid) record."""
    if value is None or value in ("", "-"):
        return None
    if value == NONE:
        return ""
    return value if set(value) <= set(CHAIN_LETTERS + "w") else None


@dataclass(frozen=True)
class ChainFlags:
    """What one send adds to the user's options, and what its receive records (None: nothing)."""

    extra: tuple[str, ...] = ()
    record: Optional[str] = None


def chain_flags(user_options: Sequence[str], new_chain: bool, recorded: Optional[str], defaults: str) -> ChainFlags:
    """The flags of one send: a new chain's (`new_chain`: a full send, or a new clone) or an existing one's.

    `recorded`: the letters the destination recorded (None: no record). Raises UsageError when the
    user's options would toggle `-L` within a recorded chain.
    """
    asked = letters(user_options)
    if new_chain:
        chain = asked if asked else defaults
        return ChainFlags(() if asked else _flags(defaults), record_value(chain))
    if recorded is None:
        return ChainFlags()  # a chain from before the record: as it was sent so far
    if "w" not in asked + recorded and "L" in asked and "L" not in recorded:
        raise UsageError(
            f"zfs send -L would change within a chain: the destination was received without -L "
            f"({FLAGS_PROPERTY}={record_value(recorded)}), and switching can zero large-record files; drop "
            f"-L/--large-block from --zfs-send-program-opts for this destination, or replicate to a new one"
        )
    missing = "".join(c for c in recorded if c in CHAIN_LETTERS and c not in asked)
    return ChainFlags(() if "w" in asked else _flags(missing))


def plan_flags(
    user_options: Sequence[str],
    defaults: str,
    full: bool,
    recorded: Optional[str],
    clone_origin_recorded: Optional[str] = None,
    is_clone: bool = False,
) -> tuple[ChainFlags, ChainFlags]:
    """The flags of a plan's first send and of the incremental sends after it in the same plan.

    `full`: the first send is a full one (a new chain). `is_clone`: it is a new clone's send from its
    origin, which continues the origin's chain (`clone_origin_recorded`) and records it on the clone.
    """
    if full:
        head = chain_flags(user_options, True, None, defaults)
        recorded = recorded_letters(head.record)
    elif is_clone:
        recorded = clone_origin_recorded
        head = chain_flags(user_options, False, recorded, defaults)
        head = ChainFlags(head.extra, None if recorded is None else record_value(recorded))
    else:
        head = chain_flags(user_options, False, recorded, defaults)
    return head, chain_flags(user_options, False, recorded, defaults)


def dataset_flags(
    plan: DatasetPlan,
    dst_datasets: Mapping[str, Dataset],
    clone_origin: Optional[tuple[str, str]],
    config: ReplicationConfig,
) -> tuple[ChainFlags, ChainFlags]:
    """`plan_flags` for a dataset's plan, with the records the destination listing holds.

    `clone_origin`: (source origin, destination copy) snapshot names when the plan makes a new clone.
    """
    first = plan.steps[0]
    is_clone = clone_origin is not None and first.base is not None and first.base.full_name == clone_origin[0]
    own = dst_datasets.get(plan.dst)
    copy = dst_datasets.get(clone_origin[1].partition("@")[0]) if clone_origin else None
    return plan_flags(
        config.send_options,
        config.send_flags,
        first.base is None,
        recorded_letters(own.send_flags if own else None),
        recorded_letters(copy.send_flags if copy else None),
        is_clone,
    )


def resumed_record(token: Optional[ResumeToken]) -> Optional[str]:
    """A resumed full send still starts its chain: the record of the flags its token carries (None: incremental).

    The token names only flags the stream uses: `largeblockok` only when the dataset has large blocks, so
    a resumed chain of small records is recorded without L and stays without it, as safe as with it."""
    if token is None or token.fromguid:
        return None
    return record_value(token.flags + ("w" if token.raw else ""))


def _flags(chain: str) -> tuple[str, ...]:
    return tuple(f"-{c}" for c in chain)
