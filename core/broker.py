"""The zero-install broker: kombu's filesystem transport, with each message written whole before
a consumer can see it.

kombu creates a message's file under its final name and only then encodes and writes the
message into it; a worker listing the folder meanwhile takes the file, reads it empty or cut
short, and stops on the JSONDecodeError (the message is gone with it). Here the message is
written under a name no consumer takes (not ending in `.<queue>.msg`) and renamed into place,
which is atomic within the folder. Used when CELERY_BROKER_URL is unset (mes/settings.py).
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put `payload` onto `queue`: written under a partial name, then renamed to the name
        kombu's consumer looks for (taken in order of the millisecond of the put, as kombu's)."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.partial")
        data = str_to_bytes(dumps(payload))  # before any file: a failure leaves none behind
        try:
            with open(partial, "wb") as f:
                f.write(data)
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
