"""SVG snapshots of the main views over the fixed sample (frozen clock, UTC).

Regenerate after an intended UI change with: pytest tests/test_snapshots.py --snapshot-update
"""

from sluice_tui.demo.screenshots import SIZE, VIEWS, sample_app


def snapshot(snap_compare, name: str) -> bool:
    keys = dict(VIEWS)[name]
    return snap_compare(sample_app(), terminal_size=SIZE, press=keys)


def test_jobs_screen_in_all_states(snap_compare):
    assert snapshot(snap_compare, "jobs.svg")


def test_job_detail_with_retries_and_traceback(snap_compare):
    assert snapshot(snap_compare, "job_detail.svg")


def test_workers_screen(snap_compare):
    assert snapshot(snap_compare, "workers.svg")


def test_help_screen(snap_compare):
    assert snapshot(snap_compare, "help.svg")


def test_diagnostics_screen(snap_compare):
    assert snapshot(snap_compare, "diagnostics.svg")
