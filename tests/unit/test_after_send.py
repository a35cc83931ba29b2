"""The steps around a dataset's send in as few zfs processes as they allow: a first run holds each side's
new snapshot with one `zfs hold` (the source's is the protective hold taken before the send), asks
`zfs holds` only about older snapshots or when a hold says the tag is there already, and its
bookmarks are made in the background and waited for."""

from __future__ import annotations

from tests.unit.fixtures import history
from zferry.after_send import AfterSend
from zferry.errors import CommandError
from zferry.exec.host import Host
from zferry.holds import hold_tag
from zferry.inventory import Side
from zferry.model import Inventory, Version
from zferry.plan.replication import DatasetPlan
from zferry.plan.steps import SendStep

SRC, DST = Side(Host(), "src/r"), Side(Host(), "dst/r")
TAG = hold_tag(DST)


class _Zfs:
    """Records argv lists; keeps holds like zfs: a `zfs hold` of many fails whole if one has the tag."""

    dry_run = False

    def __init__(self, holds: dict[str, set[str]]) -> None:
        self.holds = holds
        self.calls: list[list[str]] = []

    def run(self, host: Host, argv: list[str], **_: object) -> str:
        self.calls.append(list(argv))
        verb, args = argv[1], argv[2:]
        if verb == "holds":
            return "".join(f"{s}\t{t}\t0\n" for s in args[1:] for t in sorted(self.holds.get(s, ())))
        if verb == "hold":
            if any(args[0] in self.holds.get(s, set()) for s in args[1:]):
                raise CommandError("zfs hold failed", argv, 1, f"cannot hold snapshot '{args[1]}': tag already exists")
            for snapshot in args[1:]:
                self.holds.setdefault(snapshot, set()).add(args[0])
        if verb == "release":
            for snapshot in args[1:]:
                self.holds[snapshot].discard(args[0])
        return ""

    def verbs(self, side: str) -> list[str]:
        return [c[1] for c in self.calls if c[-1].startswith(side)]


def _first_send(dataset: str) -> tuple[DatasetPlan, list[Version]]:
    snaps = history("a", f"src/{dataset}")
    return DatasetPlan(f"src/{dataset}", f"dst/{dataset}", steps=(SendStep(None, snaps[0]),)), snaps


def test_a_first_run_holds_each_side_once_and_bookmarks_in_the_background() -> None:
    zfs = _Zfs({})
    after = AfterSend(zfs, SRC, DST, "all")  # type: ignore[arg-type]
    plan, snaps = _first_send("r")
    after.before_send(plan, snaps)
    assert zfs.calls == [["zfs", "hold", TAG, "src/r@a"]]  # protected before the send
    after.on_sent(plan, snaps)
    after.finish(Inventory({}, {"src/r": tuple(snaps)}), Inventory.empty())
    assert after.bookmarks == 1
    assert sorted(zfs.verbs("src/r")) == ["bookmark", "hold"]  # no `zfs holds`, no second hold
    assert zfs.verbs("dst/r") == ["hold"]
    assert zfs.holds == {"src/r@a": {TAG}, "dst/r@a": {TAG}}


def test_a_target_holding_the_tag_already_is_asked_about_and_the_others_held() -> None:
    zfs = _Zfs({"dst/r@a": {TAG}})  # e.g. a killed run's
    after = AfterSend(zfs, SRC, DST, "none")  # type: ignore[arg-type]
    for name in ("r", "r/x"):
        plan, snaps = _first_send(name)
        after.on_sent(plan, snaps)  # not protected: the source side asks too
    after.finish(Inventory.empty(), Inventory.empty())
    assert zfs.verbs("dst/r") == ["hold", "holds", "hold"]
    assert [c for c in zfs.calls if c[-1].startswith("dst/")][-1] == ["zfs", "hold", TAG, "dst/r/x@a"]
    assert zfs.verbs("src/r") == ["hold"]
    assert all(zfs.holds[f"{side}/{name}@a"] == {TAG} for side in ("src", "dst") for name in ("r", "r/x"))
