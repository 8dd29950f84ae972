"""An MQTT broker in Python (amqtt, MQTT 3.1.1) for the zero-install demo, on loopback only.

The demo runner starts it when MQTT_URL is unset, as settings start an embedded PostgreSQL when
DATABASE_URL is: the bridge and the simulators' MQTT stations then talk through it. It keeps
sessions in memory (a restart of the demo starts afresh) and lets anyone on this machine
connect: for a plant, Mosquitto with per-station credentials and an ACL (docker-compose.yml).
"""

from __future__ import annotations

import asyncio
import logging

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run an embedded MQTT broker (amqtt) on 127.0.0.1 for the demo."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=1883)

    def handle(self, *args, port: int, **options) -> None:
        from amqtt.broker import Broker

        # Its per-packet chatter at INFO would drown the demo's output.
        for name in ("amqtt", "transitions"):  # transitions: amqtt's state machines
            logging.getLogger(name).setLevel(logging.WARNING)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }

        async def serve() -> None:
            broker = Broker(config)
            await broker.start()
            self.stdout.write(f"Embedded MQTT broker on mqtt://127.0.0.1:{port}")
            try:
                await asyncio.Event().wait()
            finally:
                await broker.shutdown()

        try:
            asyncio.run(serve())
        except KeyboardInterrupt:
            pass
