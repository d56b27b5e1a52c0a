"""One event message in, events out to the adapter: the rules every receive path shares.

A message body is JSON (decoded here directly) or another content type
(decoded by kombu, which enforces the app's ``accept`` list).  A message may
carry one event or a list of them.  Each event is stamped with the time its
message arrived; what cannot be decoded is counted as a bad event, never
raised.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from json import dumps as json_dumps
from json import loads as json_loads
from typing import Any, Protocol

from kombu.compression import decompress
from kombu.serialization import loads as kombu_loads
from kombu.serialization import prepare_accept_content

from sluice_tui.model.store import JobStore

JSON = "application/json"


class RawSink(Protocol):
    """Where every message goes as received (the history journal).

    The receiver appends each message's body, as JSON bytes, and then its
    arrival time to ``inbox``: two appends, no call and no pair to make (a
    pair is an object the garbage collector must look at, for every event).
    """

    inbox: list[Any]


class EventFeed:
    """Decodes event messages and hands their events to ``handle`` (the adapter)."""

    def __init__(
        self,
        handle: Callable[[Any], None],
        store: JobStore,
        accept: Iterable[str],
        raw_sink: RawSink | None = None,
    ) -> None:
        self._handle = handle
        self._store = store
        # Content types, as kombu's Consumer would prepare them from serializer names.
        self.accept = prepare_accept_content(set(accept))
        self._raw_sink = raw_sink
        # When the last message arrived: the stream was good until then.
        self.last_received: float | None = None

    def json_message(self, body: bytes) -> None:
        """A message whose content type is JSON: the common case, kept short."""
        received = self.last_received = time.time()
        try:
            decoded = json_loads(body)
        except Exception as exc:
            self._undecodable(exc, body)
            return
        sink = self._raw_sink
        if sink is not None:
            inbox = sink.inbox
            inbox.append(body if body.__class__ is bytes else _as_bytes(body))
            inbox.append(received)
        if decoded.__class__ is dict:  # one event: self._event, inlined (two calls less)
            decoded["local_received"] = received
            self._handle(decoded)
        else:
            self._events(decoded, received)

    def message(
        self,
        body: Any,
        content_type: str | None,
        content_encoding: str | None,
        compression: str | None = None,
    ) -> None:
        """Any message: JSON takes the short way, the rest goes through kombu and ``accept``."""
        if compression:
            try:
                body = decompress(body, compression)
            except Exception as exc:
                self.last_received = time.time()
                self._undecodable(exc, body)
                return
        if content_type == JSON:
            self.json_message(body)
            return
        received = self.last_received = time.time()
        try:
            decoded = kombu_loads(body, content_type, content_encoding, accept=self.accept)
        except Exception as exc:
            self._undecodable(exc, body)
            return
        sink = self._raw_sink
        if sink is not None:
            inbox = sink.inbox
            inbox.append(json_dumps(decoded, default=repr).encode("utf-8", "surrogatepass"))
            inbox.append(received)
        self._events(decoded, received)

    def _events(self, decoded: Any, received: float) -> None:
        if decoded.__class__ is list:  # Celery 4+ may batch events in one message
            for event in decoded:
                self._event(event, received)
        else:
            self._event(decoded, received)

    def _event(self, event: Any, received: float) -> None:
        """Note when the event arrived, then hand it to the adapter.

        The event's ``timestamp`` is kept as sent: Celery stamps it with
        ``time.time()``, true epoch seconds whatever the sender's zone.  Celery's
        own Receiver shifts it by the difference between the sender's
        ``utcoffset`` and ours, which puts a worker in another zone hours away
        from everything the monitor dates itself (its actions, a lost worker,
        a resync) and from real-UTC ETAs.  One time base for every entry;
        zones matter only when a time is shown.  Celery's Lamport clock is left
        alone too: nothing here orders by it.
        """
        if event.__class__ is not dict:
            self._store.record_bad_event("malformed event message", f"{event!r:.300}")
            return
        event["local_received"] = received
        self._handle(event)  # the adapter judges the rest

    def bad(self, reason: str, sample: Any) -> None:
        """A message a transport could not even take apart (a broken envelope)."""
        self.last_received = time.time()
        self._store.record_bad_event(reason, f"{sample!r:.300}")

    def _undecodable(self, exc: Exception, body: Any) -> None:
        self._store.record_bad_event("undecodable message", f"{type(exc).__name__}: {body!r:.300}")


def _as_bytes(body: Any) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8", "surrogatepass")
    return bytes(body)
