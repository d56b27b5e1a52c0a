"""kombu's filesystem transport, with each message written atomically.

kombu creates a message file, then locks and fills it.  A consumer polling the
folder in between can take the still-empty file, and the JSON error kills that
consumer: a demo worker then silently stops working (seen in CI runs).  Here a
message is written under a name no consumer looks at and renamed into place,
so it appears whole or not at all.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # Consumers match "<stamp>_<uuid>.<queue>.msg"; a leading dot hides this.
        partial = os.path.join(self.data_folder_out, f".{name}.partial")
        try:
            # Buffered on purpose: an unbuffered write may write only part of
            # the data (disk full, size limit) and say so only in its return
            # value; the buffered writer retries or raises.
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
