"""The zero-install broker (core.broker): kombu's filesystem transport, whose messages a worker
can only take once they are written whole."""

from __future__ import annotations

import os
import uuid

import pytest
from kombu import Connection

from core import broker


@pytest.fixture
def folders(tmp_path) -> dict[str, str]:
    options = {
        name: str(tmp_path / name)
        for name in ("data_folder_in", "processed_folder", "control_folder")
    }
    for folder in options.values():
        os.makedirs(folder)
    return {**options, "data_folder_out": options["data_folder_in"], "store_processed": False}


@pytest.fixture
def queue_name() -> str:
    """A queue of its own per test: kombu remembers in the process which queues it declared."""
    return f"results-{uuid.uuid4().hex}"


def _queue_files(folder: str, queue: str) -> list[str]:
    """The files kombu's consumer would take for `queue` (it matches on the name's end)."""
    return [name for name in os.listdir(folder) if name.partition(".")[2] == f"{queue}.msg"]


def test_messages_are_taken_whole(folders, queue_name):
    with Connection("filesystem://", transport=broker.Transport, transport_options=folders) as c:
        queue = c.SimpleQueue(queue_name)
        sent = [{"n": n, "rows": [{"value": "x" * 50}] * 500} for n in range(3)]
        for message in sent:
            queue.put(message)
        assert queue.qsize() == 3
        received = []
        for _ in sent:
            message = queue.get(timeout=1)
            received.append(message.payload)
            message.ack()
        assert sorted(received, key=lambda m: m["n"]) == sent
        assert os.listdir(folders["data_folder_in"]) == []


def test_no_consumer_sees_a_message_before_it_is_written(folders, queue_name, monkeypatch):
    """While a message is being encoded, the folder holds no file a consumer would take (kombu's
    own channel has created it by then: a worker takes it and reads it empty)."""
    seen: list[list[str]] = []
    dumps = broker.dumps

    def encoding_while_looking(payload, *args, **kwargs):
        seen.append(_queue_files(folders["data_folder_in"], queue_name))
        return dumps(payload, *args, **kwargs)

    monkeypatch.setattr(broker, "dumps", encoding_while_looking)
    with Connection("filesystem://", transport=broker.Transport, transport_options=folders) as c:
        c.SimpleQueue(queue_name).put({"n": 1})
    assert seen == [[]]
    assert len(_queue_files(folders["data_folder_in"], queue_name)) == 1
