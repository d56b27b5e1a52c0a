"""The demo's filesystem transport never shows a consumer a half-written message."""

from __future__ import annotations

import pytest
from kombu import Connection
from kombu.transport import filesystem as kombu_filesystem

from sluice_tui.demo import filesystem_transport


@pytest.mark.parametrize(
    ("transport", "atomic"),
    [(filesystem_transport.Transport, True), (kombu_filesystem.Transport, False)],
    ids=["sluice", "kombu"],
)
def test_a_message_is_visible_only_once_complete(tmp_path, monkeypatch, transport, atomic):
    visible_while_writing: list[list[str]] = []
    real_dumps = kombu_filesystem.dumps

    def dumps_and_look(payload):
        # The moment the payload is being serialized: what would a consumer see?
        visible_while_writing.append(
            [p.name for p in tmp_path.iterdir() if p.name.endswith(".jobs.msg")]
        )
        return real_dumps(payload)

    monkeypatch.setattr(filesystem_transport, "dumps", dumps_and_look)
    monkeypatch.setattr(kombu_filesystem, "dumps", dumps_and_look)
    options = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path)}
    with Connection(transport=transport, transport_options=options) as conn:
        queue = conn.SimpleQueue("jobs")
        queue.put({"n": 1})
        assert queue.get(timeout=1).payload == {"n": 1}
        queue.close()
    # kombu's own transport shows an empty file; this is why the demo uses its own.
    assert any(visible_while_writing) is not atomic
