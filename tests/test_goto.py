"""g (go to job): what a typed id opens, and what it refuses to open."""

from __future__ import annotations

import pytest

from sluice_tui.demo.sample import job_id, sample_store
from sluice_tui.ui.screens.goto import MAX_ID_LENGTH, could_start_uuid, goto_target, is_uuid

UNSEEN_UUID = "0123abcd-0000-4000-8000-00000000beef"


@pytest.fixture
def find():
    return sample_store().find


def test_a_known_id_or_the_start_of_one_opens_it(find):
    assert goto_target(job_id(5), find).job_id == job_id(5)
    assert goto_target(job_id(5)[:8], find).job_id == job_id(5)
    assert goto_target(f"  {job_id(5)[:10]} ", find).job_id == job_id(5)


@pytest.mark.parametrize("text", ["0123abcd", "0123abcd-00", "f", "abc", job_id(5)[:7] + "f"])
def test_the_start_of_a_uuid_that_fits_no_job_opens_nothing(find, text):
    target = goto_target(text, find)
    assert target.job_id is None
    assert target.problem.startswith(f"no job id starts with {text}.")


@pytest.mark.parametrize(
    "text",
    [
        UNSEEN_UUID,  # Celery's PENDING: maybe queued before the monitor started
        "report-2024-07-01",  # apply_async(task_id=...)
        "0123abcd00004000800000000000beef",  # uuid4().hex: no UUID starts like that
        "0123abcd_retry",
    ],
)
def test_a_whole_id_never_seen_still_opens_as_unknown(find, text):
    assert goto_target(text, find).job_id == text


def test_a_prefix_of_several_jobs_says_how_many(find):
    # The sample's ids are 00000001-... to 0000000c-...: twelve start with 0000000.
    assert goto_target("0000000", find).problem == (
        "more than 10 job ids start with 0000000; type more of the id"
    )
    assert goto_target("0000000", lambda _text, _limit: ["0000000a", "0000000b"]).problem == (
        "2 job ids start with 0000000; type more of the id"
    )


def test_text_longer_than_any_id_and_control_characters(find):
    assert goto_target("x" * (MAX_ID_LENGTH + 1), find).job_id is None
    target = goto_target("0123\x1b[2J", lambda _text, _limit: ["0123\x1b[2Ja", "0123\x1b[2Jb"])
    assert "\x1b" not in target.problem and "0123\\x1b[2J" in target.problem
    assert goto_target("", find) == goto_target("   ", find)
    assert goto_target("", find).job_id is None and not goto_target("", find).problem


def test_uuid_shape():
    assert is_uuid(UNSEEN_UUID) and is_uuid(UNSEEN_UUID.upper())
    assert not is_uuid(UNSEEN_UUID[:-1]) and not is_uuid(UNSEEN_UUID.replace("-", "x"))
    assert could_start_uuid("0123abcd-") and not could_start_uuid("0123abcde")
    assert not could_start_uuid(UNSEEN_UUID + "0")
