"""The snapshot caches against adversarial clocks: a simulated zfs host whose clock is skewed,
slewed, a little behind (the kernel's coarse clock) or stepped back a little, snapshot changes in
the same second as the listings, and our wall clock anywhere. Whatever the timeline, a cached
list is never used once the snapshots changed after it was listed: no change is ever missed."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zferry.exec.host import LOCAL, Host
from zferry.exec.probe import Capabilities
from zferry.model import Version
from zferry.observe import host_clock
from zferry.observe.host_clock import MAX_SLEW, host_time_floor
from zferry.observe.version_cache import VersionCache

REMOTE = Host(name="zfshost")
DATASET = "pool/root/x"


@dataclass(frozen=True)
class World:
    """Real time -> the zfs host's clock and ours; where and when the snapshots change."""

    skew: float  # the host's clock minus real time (0 for local zfs: the same clock)
    host_rate: float  # |rate| <= MAX_SLEW / 2 for both clocks
    our_rate: float
    step_at: float  # the host's clock steps back by `step_back` (< the margin's spare second) here
    step_back: float
    lag: float  # the kernel's coarse clock is this far behind
    changes: tuple[float, ...]  # real times of snapshot changes, sorted

    def host(self, real: float) -> float:
        return self.skew + real * (1 + self.host_rate) - (self.step_back if real >= self.step_at else 0.0)

    def monotonic(self, real: float) -> float:
        return 500.0 + real * (1 + self.our_rate)

    def state(self, real: float) -> int:
        """How many changes happened up to `real`: what a listing then shows."""
        return bisect.bisect_right(self.changes, real)

    def snapshots_changed(self, real: float) -> int:
        count = self.state(real)
        when = self.changes[count - 1] if count else -100.0
        return math.floor(self.host(when) - self.lag)


def simulate(
    world: World, remote: bool, probe: tuple[float, float], runs: list[tuple[float, float, float]], directory: Path
) -> Optional[str]:
    """Runs of the cached listing; the first stale hit (a missed change), if any.

    A run takes the host-clock floor, reads snapshots_changed `read` s later, and lists the
    snapshots `listing` s after that; a change may fall anywhere in between.
    """
    host = REMOTE if remote else LOCAL
    start, rtt = probe
    caps = Capabilities(
        True, frozenset(), host_clock=(math.floor(world.host(start + rtt / 2)), world.monotonic(start + rtt))
    )
    real = start + rtt
    for gap, read, listing in runs:
        real += gap
        cache = VersionCache(str(directory), host.label, "pool/root")
        listed_at = host_time_floor(host, caps, wall=world.host(real), monotonic=world.monotonic(real))
        real += read
        changed = world.snapshots_changed(real)
        hit = cache.lookup(DATASET, changed, "1")
        if hit is not None:
            if hit[0].guid != world.state(real):
                return f"at {real:.3f}: cached state {hit[0].guid}, real state {world.state(real)}"
            continue
        real += listing
        cache.store(DATASET, changed, [Version(DATASET, "s", world.state(real), 1, 0)], listed_at, "1")
        cache.save()
    return None


_rate = st.floats(-MAX_SLEW / 2, MAX_SLEW / 2)
_runs = st.lists(st.tuples(st.floats(0.0, 2.0), st.floats(0.0, 0.5), st.floats(0.0, 0.5)), min_size=1, max_size=12)


@settings(max_examples=500, deadline=None)
@given(
    skew=st.floats(-1e6, 1e6),
    host_rate=_rate,
    our_rate=_rate,
    step_at=st.floats(0, 20),
    step_back=st.floats(0, 0.85),
    lag=st.floats(0, 0.01),
    changes=st.lists(st.floats(0, 20), max_size=30),
    remote=st.booleans(),
    probe=st.tuples(st.floats(0, 0.999), st.floats(0.001, 3.0)),
    runs=_runs,
)
def test_no_change_is_ever_missed(
    tmp_path_factory: pytest.TempPathFactory,
    skew: float,
    host_rate: float,
    our_rate: float,
    step_at: float,
    step_back: float,
    lag: float,
    changes: list[float],
    remote: bool,
    probe: tuple[float, float],
    runs: list[tuple[float, float, float]],
) -> None:
    world = World(skew if remote else 0.0, host_rate, our_rate, step_at, step_back, lag, tuple(sorted(changes)))
    assert simulate(world, remote, probe, runs, tmp_path_factory.mktemp("cache")) is None


_SCENARIOS = {
    # change at .1, listing at .3, change at .6: all in host second 1000
    "same second": (World(1000.0, 0.0, 0.0, 99.0, 0.0, 0.0, (0.1, 0.6)), [(0.0, 0.1, 0.1), (1.0, 0.0, 0.0)], -1.0),
    # the kernel's coarse clock stamps a change at 1001.008 as 1000 (10 ms behind), after a listing at 1001.003
    "coarse clock": (World(1000.0, 0.0, 0.0, 99.0, 0.0, 0.01, (0.5, 1.008)), [(1.002, 0.0, 0.0), (2.0, 0.0, 0.0)], 1.0),
    # the host's clock steps back 0.8 s after a listing at 1001.02: the next change is stamped 1000 again
    "step back": (World(1000.0, 0.0, 0.0, 1.05, 0.8, 0.0, (0.5, 1.1)), [(1.019, 0.0, 0.0), (2.0, 0.0, 0.0)], 1.0),
}


@pytest.mark.parametrize("scenario", sorted(_SCENARIOS))
def test_the_simulation_catches_a_rule_without_margin(
    scenario: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model can fail: with less margin than SAFETY_SECONDS (none at all, or only the proof's
    whole second), each of these timelines misses a change; with it, none does."""
    world, runs, weaker = _SCENARIOS[scenario]
    assert simulate(world, False, (0.0, 0.001), runs, tmp_path / "safe") is None
    monkeypatch.setattr(host_clock, "SAFETY_SECONDS", weaker)
    assert simulate(world, False, (0.0, 0.001), runs, tmp_path / "unsafe") is not None
