"""Resume tokens (decoding, the source-side check, which errors discard them), retries of steps that
change something, and clone planning: pure, no ZFS."""

from __future__ import annotations

import pytest

from tests.unit.fixtures import history
from zferry.errors import CommandError, DatasetNotFound
from zferry.plan.clones import as_clone, blocked, clone_waves, find_version, same_snapshot
from zferry.plan.replication import DatasetPlan
from zferry.plan.resume import token_problem
from zferry.plan.steps import SendStep
from zferry.retry import RetryPolicy, call_idempotent
from zferry.zfs import (
    DATASET_COLUMNS,
    ResumeToken,
    already_exists,
    does_not_exist,
    is_unusable_token_error,
    parse_datasets,
    parse_resume_token,
)

# What `zfs send -nvt TOKEN` prints on stdout (OpenZFS 2.1 and 2.3 print the nvlist the same way).
DESCRIBED = """resume token contents:
nvlist version: 0
\tfromguid = 0x6b3c2f1e2d4a5b01
\tobject = 0x80
\toffset = 0x1a0000
\tbytes = 0x5b8d80
\ttoguid = 0x1f2e3d4c5b6a7988
\ttoname = src/x@s2
\tcompressok = 1
\trawok = 1
incremental\ts1\tsrc/x@s2\t5993728
"""


def test_parse_resume_token_reads_name_guids_and_raw() -> None:
    token = parse_resume_token(DESCRIBED)
    assert token == ResumeToken("src/x@s2", 0x1F2E3D4C5B6A7988, 0x6B3C2F1E2D4A5B01, raw=True, flags="c")
    assert token is not None and token.dataset == "src/x"


def test_parse_resume_token_full_and_not_raw() -> None:
    text = "resume token contents:\nnvlist version: 0\n\tobject = 0x1\n\ttoguid = 0x10\n\ttoname = p/a@b\n"
    assert parse_resume_token(text) == ResumeToken("p/a@b", 16, 0, raw=False)
    assert parse_resume_token("nothing useful") is None
    assert parse_resume_token("\ttoname = p/a@b\n\ttoguid = nothex\n") is None


SRC = history("s1 s2 #s1", "src/x")
S1, S2, BOOKMARK = SRC


def token(toname: str = "src/x@s2", toguid: int = S2.guid, fromguid: int = S1.guid, raw: bool = False) -> ResumeToken:
    return ResumeToken(toname, toguid, fromguid, raw)


def test_a_token_for_this_dataset_may_be_resumed() -> None:
    assert token_problem(token(), "src/x", SRC, encrypted=False) is None
    assert token_problem(token(fromguid=0), "src/x", SRC, encrypted=False) is None  # a full stream
    assert token_problem(token(fromguid=BOOKMARK.guid), "src/x", SRC, encrypted=False) is None
    assert token_problem(token(raw=True), "src/x", SRC, encrypted=True) is None


def test_a_token_naming_another_dataset_is_refused() -> None:
    other = history("s2", "src/other")[0]
    problem = token_problem(token("src/other@s2", other.guid), "src/x", SRC, encrypted=False)
    assert problem is not None and "src/other@s2" in problem


def test_a_token_whose_guid_is_not_the_named_snapshot_is_refused() -> None:
    assert token_problem(token(toguid=12345), "src/x", SRC, encrypted=False) is not None
    assert token_problem(token("src/x@s2", S1.guid), "src/x", SRC, encrypted=False) is not None  # s1's GUID


def test_a_token_from_an_unknown_base_is_refused_unless_it_is_the_clone_origin() -> None:
    assert token_problem(token(fromguid=999), "src/x", SRC, encrypted=False) is not None
    assert token_problem(token(fromguid=999), "src/x", SRC, encrypted=False, other_bases=(999,)) is None


def test_a_non_raw_token_for_an_encrypted_dataset_is_refused() -> None:
    problem = token_problem(token(raw=False), "src/x", SRC, encrypted=True)
    assert problem is not None and "decrypted" in problem


@pytest.mark.parametrize(
    "stderr",
    [
        "cannot resume send: 'src/x@s3' used in the initial send no longer exists",
        "cannot resume send: 'src/x@s3' is no longer the same snapshot used in the initial send",
        "cannot resume send: resume token is corrupt (incorrect checksum)",
        "cannot resume send: incremental source 0x1234abcd no longer exists",
        "cannot receive resume stream: kernel modules must be upgraded to receive this stream.",
    ],
)
def test_errors_that_make_a_token_unusable(stderr: str) -> None:
    assert is_unusable_token_error(CommandError("zfs send failed", ["zfs"], 1, stderr))


@pytest.mark.parametrize(
    "stderr",
    [
        "timed out after 5 s",
        "cannot receive resume stream: out of space",
        "mbuffer: error: outputThread: error writing to <stdout> at offset 0x100: Broken pipe",
        "cannot receive: failed to read from stream",
        "cannot receive incremental stream: kernel modules must be upgraded to receive this stream.",
    ],
)
def test_other_errors_keep_the_partial_receive(stderr: str) -> None:
    assert not is_unusable_token_error(CommandError("failed", ["zfs"], 1, stderr))


DROPPED = CommandError("ssh failed", ["ssh"], 255, "Connection reset by peer")
EXISTS = CommandError("zfs snapshot failed", ["zfs"], 1, "cannot create snapshot 'p/a@n': dataset already exists")
GONE = DatasetNotFound(
    "zfs destroy failed", ["zfs"], 1, "could not find any snapshots to destroy; check snapshot names."
)


def run_idempotent(failures: list[CommandError], already_done=already_exists) -> int:  # type: ignore[no-untyped-def]
    calls = []

    def action() -> None:
        calls.append(1)
        if failures:
            raise failures.pop(0)

    call_idempotent(action, RetryPolicy(retries=3), "step", already_done, sleep=lambda s: None)
    return len(calls)


def test_a_retry_that_finds_the_change_made_is_done() -> None:
    assert run_idempotent([DROPPED, EXISTS]) == 2
    assert run_idempotent([DROPPED, GONE], does_not_exist) == 2
    assert run_idempotent([DROPPED, DROPPED]) == 3


def test_already_exists_on_the_first_attempt_is_an_error() -> None:
    with pytest.raises(CommandError):
        run_idempotent([EXISTS])
    with pytest.raises(CommandError):
        run_idempotent([DROPPED, CommandError("x", ["zfs"], 1, "permission denied")])


def test_what_already_exists_and_does_not_exist_mean() -> None:
    assert already_exists(EXISTS)
    assert already_exists(CommandError("x", ["zfs"], 1, "cannot create bookmark 'p/a#b': bookmark exists"))
    assert not already_exists(DROPPED)
    assert does_not_exist(GONE) and not does_not_exist(EXISTS)


def test_clone_waves_put_origins_first() -> None:
    names = ["p/a", "p/a/clone", "p/a/clone/kid", "p/b", "p/z_origin"]
    waves = clone_waves(names, {"p/a/clone": "p/z_origin"})
    assert waves == [["p/a", "p/b", "p/z_origin"], ["p/a/clone", "p/a/clone/kid"]]
    assert clone_waves(names, {}) == [names]
    assert clone_waves(names, {"p/a/clone": "elsewhere/origin"}) == [names]  # origin not replicated here
    chain = clone_waves(["p/c1", "p/c2", "p/o"], {"p/c1": "p/c2", "p/c2": "p/o"})
    assert chain == [["p/o"], ["p/c2"], ["p/c1"]]
    assert clone_waves([], {}) == []


def test_blocked_names_are_under_or_clones_of_a_failed_dataset() -> None:
    origins = {"p/clone": "p/origin"}
    assert blocked(["p/clone", "p/other", "p/bad/kid"], {"p/origin", "p/bad"}, origins) == ["p/clone", "p/bad/kid"]


def test_as_clone_replaces_the_full_send_by_an_incremental_from_the_origin() -> None:
    origin = history("o1", "src/origin")[0]
    c1, c2, c3 = history("c1 c2 c3", "src/clone", start_txg=100)
    plan = DatasetPlan("src/clone", "dst/clone", steps=(SendStep(None, c1), SendStep(c1, c3, True)))
    cloned = as_clone(plan, origin)
    assert cloned.steps == (SendStep(origin, c1), SendStep(c1, c3, True))
    incremental = DatasetPlan("src/clone", "dst/clone", steps=(SendStep(c1, c2),))
    assert as_clone(incremental, origin) == incremental


def test_finding_the_origin_snapshot() -> None:
    origin = history("o1 o2", "src/origin")
    versions = {"src/origin": tuple(origin)}
    assert find_version("src/origin@o2", versions) == origin[1]
    assert find_version("src/origin@nope", versions) is None and find_version(None, versions) is None
    copy = history("o1", "dst/origin")[0]
    assert same_snapshot(origin[0], [copy]) == copy and same_snapshot(origin[1], [copy]) is None


def test_the_dataset_listing_reads_a_clones_origin() -> None:
    assert DATASET_COLUMNS[-2:] == ("origin", "zferry:send-flags")
    rows = "p/o\tfilesystem\t11\t100\t-\toff\t0\t-\t-\t-\np/c\tfilesystem\t12\t100\t-\toff\t0\t-\tp/o@s1\tLce\n"
    listed = parse_datasets(rows)
    assert listed["p/o"].origin is None and listed["p/c"].origin == "p/o@s1"
