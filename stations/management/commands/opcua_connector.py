"""Run the OPC UA connector (stations/opcua.py) until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from stations.opcua import load_config, run_connectors


class Command(BaseCommand):
    help = "Feed results from stations' OPC UA servers into the intake (OPCUA_CONFIG or --config)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--config", default=None, help="JSON file (default: OPCUA_CONFIG)")

    def handle(self, *args, config: str | None, **options) -> None:
        path = config or settings.OPCUA_CONFIG
        if not path:
            raise CommandError("Set OPCUA_CONFIG to the stations' JSON file or pass --config.")
        try:
            stations = load_config(path)
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            "OPC UA connector: " + ", ".join(f"{s.station} at {s.endpoint}" for s in stations)
        )

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await run_connectors(stations, stop)

        asyncio.run(main())
