"""SVG snapshots of the main views over the fixed sample (frozen clock, UTC).

Regenerate after an intended UI change with: pytest tests/test_snapshots.py --snapshot-update
"""

from sluice_tui.demo.screenshots import VIEWS, sample_app


def snapshot(snap_compare, name: str) -> bool:
    keys, size = next((keys, size) for view, keys, size in VIEWS if view == name)
    return snap_compare(sample_app(), terminal_size=size, press=keys)


def test_jobs_screen_in_all_states(snap_compare):
    assert snapshot(snap_compare, "jobs.svg")


def test_jobs_screen_at_80x24_keeps_help_and_quit(snap_compare):
    assert snapshot(snap_compare, "jobs_80x24.svg")


def test_jobs_screen_at_200x50(snap_compare):
    assert snapshot(snap_compare, "jobs_200x50.svg")


def test_job_detail_with_retries_and_traceback(snap_compare):
    assert snapshot(snap_compare, "job_detail.svg")


def test_job_detail_at_80x24(snap_compare):
    assert snapshot(snap_compare, "job_detail_80x24.svg")


def test_help_at_80x24(snap_compare):
    assert snapshot(snap_compare, "help_80x24.svg")


def test_workers_screen(snap_compare):
    assert snapshot(snap_compare, "workers.svg")


def test_help_screen(snap_compare):
    assert snapshot(snap_compare, "help.svg")


def test_diagnostics_screen(snap_compare):
    assert snapshot(snap_compare, "diagnostics.svg")


def test_queues_screen(snap_compare):
    assert snapshot(snap_compare, "queues.svg")


def test_queues_screen_at_80x24(snap_compare):
    assert snapshot(snap_compare, "queues_80x24.svg")


def test_queue_detail_with_priority_split(snap_compare):
    assert snapshot(snap_compare, "queue_detail.svg")


def test_task_types_screen(snap_compare):
    assert snapshot(snap_compare, "task_types.svg")


def test_task_types_at_80x24(snap_compare):
    assert snapshot(snap_compare, "task_types_80x24.svg")


def test_task_types_at_200x50(snap_compare):
    assert snapshot(snap_compare, "task_types_200x50.svg")
