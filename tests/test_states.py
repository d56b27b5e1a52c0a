import pytest

from sluice_tui.model.states import (
    ALL_STATES,
    Action,
    ActionNotAllowed,
    JobState,
    accepts,
    allowed,
    check_action,
)

RETRY_OK = {JobState.FAILED, JobState.CANCELLED}
REVOKE_OK = {
    JobState.ACTIVE,
    JobState.QUEUED,
    JobState.SCHEDULED,
    JobState.RETRYING,
    JobState.UNKNOWN,
}


def test_eight_states_in_filter_digit_order():
    assert [s.value for s in ALL_STATES] == [
        "unknown",
        "queued",
        "scheduled",
        "active",
        "completed",
        "failed",
        "retrying",
        "cancelled",
    ]
    assert [s.digit for s in ALL_STATES] == list(range(1, 9))


@pytest.mark.parametrize("state", ALL_STATES)
def test_retry_rule(state):
    assert allowed(Action.RETRY, state) is (state in RETRY_OK)


@pytest.mark.parametrize("state", ALL_STATES)
def test_revoke_rule(state):
    assert allowed(Action.REVOKE, state) is (state in REVOKE_OK)


def test_refusal_names_job_state_and_allowed_states():
    with pytest.raises(ActionNotAllowed) as info:
        check_action(Action.RETRY, "abc-123", JobState.ACTIVE)
    message = str(info.value)
    assert "abc-123" in message
    assert "active" in message
    assert "failed, cancelled" in message
    with pytest.raises(ActionNotAllowed) as info:
        check_action(Action.REVOKE, "abc-123", JobState.COMPLETED)
    assert "completed" in str(info.value)
    assert "unknown, queued, scheduled, active, retrying" in str(info.value)


def test_allowed_action_does_not_raise():
    check_action(Action.RETRY, "a", JobState.FAILED)
    check_action(Action.REVOKE, "a", JobState.UNKNOWN)


def test_finished_states_never_move_back():
    for done in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED):
        for earlier in (
            JobState.QUEUED,
            JobState.SCHEDULED,
            JobState.ACTIVE,
            JobState.RETRYING,
            JobState.UNKNOWN,
        ):
            assert not accepts(done, earlier)


def test_success_outranks_other_outcomes_like_celery():
    assert accepts(JobState.FAILED, JobState.COMPLETED)
    assert accepts(JobState.CANCELLED, JobState.COMPLETED)
    assert not accepts(JobState.COMPLETED, JobState.FAILED)


def test_retrying_opens_a_new_attempt():
    assert accepts(JobState.ACTIVE, JobState.RETRYING)
    assert accepts(JobState.RETRYING, JobState.QUEUED)
    assert accepts(JobState.RETRYING, JobState.SCHEDULED)
    assert accepts(JobState.RETRYING, JobState.ACTIVE)
