"""The demo's filesystem transport: a consumer never sees a half-written message."""

from __future__ import annotations

import contextlib
import resource
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection
from kombu.exceptions import ChannelError

from sluice_tui.demo import filesystem_transport
from sluice_tui.demo.workload import config_from_env


def broker_options(root: Path) -> dict:
    """The demo's own transport options (queue and control folders under ``root``)."""
    return config_from_env({"SLUICE_BROKER": str(root)})["broker_transport_options"]


def messages(folder: Path, queue: str) -> list[Path]:
    """The files a consumer of ``queue`` would take."""
    return [p for p in folder.iterdir() if p.name.endswith(f".{queue}.msg")]


@pytest.fixture
def queue_name() -> str:
    # kombu remembers declared exchanges per process, across connections: a
    # name reused with another control folder would route to no queue.
    return f"jobs-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Writes past ``limit`` bytes fail, as on a full disk (EFBIG, not a signal)."""
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_handler)


def test_a_write_cut_short_leaves_no_message_where_consumers_look(tmp_path, queue_name):
    options = broker_options(tmp_path / "broker")
    queue_folder = Path(options["data_folder_out"])
    with Connection(transport=filesystem_transport.Transport, transport_options=options) as conn:
        queue = conn.SimpleQueue(queue_name)
        queue.put({"n": 1})  # declares the queue before the disk "fills up"
        assert queue.get(timeout=1).payload == {"n": 1}
        with file_size_limit(200), pytest.raises(ChannelError):
            queue.put({"payload": "x" * 5000})
        # Neither a truncated message nor the hidden partial file is left.
        assert list(queue_folder.iterdir()) == []
        queue.put({"n": 2})
        assert queue.get(timeout=1).payload == {"n": 2}
        queue.close()


def test_every_file_stays_under_the_broker_folder(tmp_path, monkeypatch, queue_name):
    """kombu's default control folder is ./control: nothing may land in the work tree."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    options = broker_options(tmp_path / "broker")
    with Connection(transport=filesystem_transport.Transport, transport_options=options) as conn:
        queue = conn.SimpleQueue(queue_name)
        queue.put({"n": 1})
        assert messages(Path(options["data_folder_in"]), queue_name)
        assert queue.get(timeout=1).payload == {"n": 1}
        queue.close()
    assert list(cwd.iterdir()) == []
