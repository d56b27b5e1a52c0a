"""A daemon thread that loops until asked to stop: the broker-facing helpers share it."""

from __future__ import annotations

import threading


class BackgroundLoop:
    """Runs :meth:`_run` on a daemon thread; ``_stopping`` tells it to wind down."""

    def __init__(self, name: str) -> None:
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        self._stopping.set()

    def stop(self, timeout: float = 2.0) -> bool:
        """Ask the thread to stop; return whether it did within ``timeout`` seconds."""
        self.request_stop()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        raise NotImplementedError
