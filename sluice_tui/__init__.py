"""sluice-tui: a terminal monitor for Celery clusters."""

__version__ = "0.1.0"
