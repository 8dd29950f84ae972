"""Drive a line's stations through the REAL station API, as the equipment would.

Creates (or picks up) a planned batch, issues a token per station of the line, and moves cells
through every step of the batch's route: track-in, then a result with plausible readings
(demo.demo_data: pressing curves; at formation the channel's raw cycler file, demo.cycler_files,
uploaded as formation equipment does), now and then an out-of-spec value, a
short, a duplicate send, a result sent again under a new event id (as equipment does after a
restart; the workers reject it, the cell has moved on) or a station going down for a moment.
Results are paced at --rate per second. Connection errors and 5xx are retried with the same
body (the event_id makes that harmless); a 4xx is reported and the cell taken off the line, never
a crash.
"""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from batches.models import Batch, Cell, MaterialLot, MaterialRole
from batches.services import create_batch
from core.errors import DomainError
from demo.cycler_files import formation_file
from demo.demo_data import readings_for
from demo.station_http import StationHTTP
from demo.station_mqtt import mix_in_mqtt
from lines.models import CellDesign, Equipment, Line, Station
from lines.services import active_recipe_version
from stations.services import issue_station_token

ACTOR = "simulate_line"
CELLS_PER_PRESS_CYCLE = 4  # an isostatic press treats several cells in one vessel load


@dataclass
class CellInFlight:
    serial: str
    design: CellDesign
    steps: list[str]
    position: int = 0


@dataclass
class Tally:
    counts: Counter = field(default_factory=Counter)

    def add(self, what: str, n: int = 1) -> None:
        self.counts[what] += n

    def line(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))


class Command(BaseCommand):
    help = "Simulate a line's equipment against the station API (e.g. `simulate_line proto --cells 20 --rate 2`)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("line", help="Line code, e.g. proto or yokohama")
        parser.add_argument("--cells", type=int, default=10, help="Stop after this many cells")
        parser.add_argument("--rate", type=float, default=2.0, help="Results per second")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument(
            "--duration", type=float, default=0, help="Stop after seconds (0: no limit)"
        )
        parser.add_argument("--upset-rate", type=float, default=0.05, help="Share of bad readings")
        parser.add_argument("--duplicate-rate", type=float, default=0.02, help="Share sent twice")
        parser.add_argument(
            "--resend-rate",
            type=float,
            default=0.01,
            help="Share sent again under a new event id (rejected by the workers: wrong step)",
        )
        parser.add_argument("--batch-size", type=int, default=50, help="Cells per new batch")
        parser.add_argument(
            "--formation-summaries",
            action="store_true",
            help="Send formation's figures as a result instead of uploading the cycler file",
        )
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        line = Line.objects.filter(code=options["line"]).first()
        if line is None:
            raise CommandError(f"No line {options['line']}.")
        if options["rate"] <= 0 or options["cells"] < 1:
            raise CommandError("--rate must be positive and --cells at least 1.")
        self.options = options
        self.rng = random.Random(options["seed"])
        self.line = line
        self.tally = Tally()
        self.clients = self.connect_stations(line, options["base_url"])
        self.interval = 1.0 / options["rate"]
        self.next_slot = time.monotonic()
        self.press_cycles: Counter = Counter()
        started = time.monotonic()
        deadline = started + options["duration"] if options["duration"] else None
        self.stdout.write(
            f"Simulating line {line.code} at {options['base_url']}: {options['cells']} cells, "
            f"{options['rate']:g} results/s, stations {', '.join(self.clients)}"
        )
        for code in self.clients:
            self.set_state(code, "running", "shift start")
        queue: deque[CellInFlight] = deque()
        done = 0
        report_at = time.monotonic() + 10
        try:
            while done < options["cells"] and not (deadline and time.monotonic() > deadline):
                if not queue or queue[-1].position > 0:
                    cell = self.next_cell(options["cells"] - done - len(queue))
                    if cell is not None:
                        queue.append(cell)
                if not queue:
                    break
                # The most advanced cell first, as a line empties downstream before loading.
                for cell in sorted(queue, key=lambda c: -c.position):
                    if self.run_step(cell):
                        cell.position += 1
                    else:
                        cell.position = len(cell.steps)  # held, refused: off the line
                    if cell.position >= len(cell.steps):
                        queue.remove(cell)
                        done += 1
                        self.tally.add("cells finished")
                    if time.monotonic() >= report_at:
                        self.stdout.write(
                            f"[{time.monotonic() - started:6.0f} s] {self.tally.line()}"
                        )
                        report_at = time.monotonic() + 10
        except KeyboardInterrupt:
            self.stdout.write("Interrupted.")
        for code in self.clients:
            self.set_state(code, "idle", "simulation ended")
        self.stdout.write(
            f"Done in {time.monotonic() - started:.0f} s: {self.tally.line()}; "
            f"{sum(c.retries for c in self.clients.values())} retried sends."
        )

    # ------------------------------------------------------------ set-up

    def connect_stations(self, line: Line, base_url: str) -> dict[str, StationHTTP]:
        # --keep-others semantics: a token per run, older ones (another simulator, the demo's
        # equipment) keep working.
        clients = {
            station.code: StationHTTP(
                base_url, issue_station_token(station, by=ACTOR, revoke_others=False)
            )
            for station in line.stations.order_by("code")
        }
        # With a broker configured, some stations send their results and state over MQTT.
        return mix_in_mqtt(clients, name=f"simulate-{line.code}")

    def next_cell(self, wanted: int) -> CellInFlight | None:
        if wanted <= 0:
            return None
        cell = (
            Cell.objects.filter(
                batch__line=self.line,
                batch__status__in=[Batch.Status.PLANNED, Batch.Status.IN_PROGRESS],
                status=Cell.Status.PLANNED,
                runs__isnull=True,
            )
            .select_related("batch__design", "batch__route")
            .order_by("batch__created_at", "position")
            .exclude(serial__in=self.started)
            .first()
        )
        if cell is None:
            batch = self.create_batch(min(wanted, self.options["batch_size"]))
            cell = (
                batch.cells.select_related("batch__design", "batch__route")
                .order_by("position")
                .first()
            )
            self.stdout.write(f"Created batch {batch.code} ({batch.planned_quantity} cells).")
        self.started.add(cell.serial)
        return CellInFlight(cell.serial, cell.batch.design, cell.batch.route.step_kinds())

    @property
    def started(self) -> set[str]:
        if not hasattr(self, "_started"):
            self._started: set[str] = set()
        return self._started

    def create_batch(self, quantity: int) -> Batch:
        latest = Batch.objects.filter(line=self.line).order_by("-created_at").first()
        route = latest.route if latest else self.line.routes.order_by("code").first()
        design = self.design_for_line()
        if route is None or design is None:
            raise CommandError(
                f"Line {self.line.code} has no route or no cell design: seed it first."
            )
        lots = {}
        for role in MaterialRole.values:
            lot = (
                MaterialLot.objects.filter(
                    role=role, status=MaterialLot.Status.RELEASED, children__isnull=True
                )
                .order_by("code")
                .first()
            )
            if lot is not None:
                lots[role] = lot.code
        return create_batch(
            line=self.line,
            design=design,
            route=route,
            quantity=quantity,
            by=ACTOR,
            material_lots=lots,
        )

    def design_for_line(self) -> CellDesign | None:
        """The design the line's stacking recipe is set up for (its exact layer count)."""
        stacking = self.line.stations.filter(kind="stacking").first()
        if stacking is not None:
            try:
                limits = active_recipe_version(stacking).parameters_dict().get("layer_count", {})
            except DomainError:
                limits = {}
            if limits.get("target") is not None:
                design = CellDesign.objects.filter(layer_count=int(limits["target"])).first()
                if design is not None:
                    return design
        return CellDesign.objects.order_by("code").first()

    # ------------------------------------------------------------ one step

    def station_for(self, kind: str) -> Station | None:
        stations = [s for s in self.line.stations.all() if s.kind == kind]
        return self.rng.choice(stations) if stations else None

    def pace(self) -> None:
        self.next_slot = max(self.next_slot + self.interval, time.monotonic() - 1)
        delay = self.next_slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def run_step(self, cell: CellInFlight) -> bool:
        """Track-in and result of the cell's next step; False when the cell leaves the line."""
        kind = cell.steps[cell.position]
        station = self.station_for(kind)
        if station is None:
            self.tally.add(f"no {kind} station")
            return False
        client = self.clients[station.code]
        if self.rng.random() < 0.01:
            self.set_state(station.code, "down", "jam")  # a downtime-reason code
            self.set_state(station.code, "running", "jam cleared")
        if not self.track_in(client, cell, kind):
            return False
        if kind == "formation" and not self.options["formation_summaries"]:
            return self.upload_formation_file(client, cell)
        result = self.result(cell, kind, station)
        self.pace()
        reply = client.post_results([result])
        if reply.status == 401:  # someone revoked the simulator's token: issue a fresh one
            client.token = issue_station_token(station, by=ACTOR, revoke_others=False)
            reply = client.post_results([result])
        if reply.status != 202:
            self.tally.add(f"results refused ({reply.code or reply.status})")
            return False
        self.tally.add(f"{kind} results")
        if self.rng.random() < self.options["duplicate_rate"]:
            again = client.post_results([result])
            self.tally.add("duplicates sent" if again.status == 202 else "duplicate refused")
        if self.rng.random() < self.options["resend_rate"]:
            again = client.post_results([{**result, "event_id": f"{result['event_id']}-resent"}])
            self.tally.add(
                "resent under a new event id" if again.status == 202 else "resend refused"
            )
        failed = result.get("defects") or result.get("verdict") == "fail"
        if failed:
            self.tally.add(f"{kind} upsets")
        return not failed  # a failed cell is held at this step: it leaves the line

    def upload_formation_file(self, client: StationHTTP, cell: CellInFlight) -> bool:
        """The formation channel's raw file; the workers read and judge it. A cell it fails is
        held there, and the next station's track-in refuses it."""
        content, upset = formation_file(
            cell.design, self.rng, upset_rate=self.options["upset_rate"]
        )
        self.pace()
        reply = client.post_cycler_file(
            cell=cell.serial,
            event_id=f"sim-{cell.serial}-formation-file",
            file_name=f"{cell.serial}-formation.csv",
            content=content,
            format="csv",
        )
        if reply.status != 202:
            self.tally.add(f"cycler files refused ({reply.code or reply.status})")
            return False
        self.tally.add("formation cycler files")
        if upset:
            self.tally.add(f"formation upsets ({upset})")
        return True

    def track_in(self, client: StationHTTP, cell: CellInFlight, kind: str) -> bool:
        for _ in range(20):
            reply = client.post("/api/v1/station/track-in", {"cell": cell.serial})
            if reply.status == 200:
                self.tally.add("track-ins")
                return True
            if reply.code == "wrong_step":
                # The previous step's result is still with the workers; wait for it a little.
                time.sleep(0.25)
                continue
            self.tally.add(f"track-in refused ({reply.code or reply.status})")
            return False
        self.tally.add("track-in gave up waiting")
        return True  # results are accepted without track-in; it will wait its turn

    def result(self, cell: CellInFlight, kind: str, station: Station) -> dict[str, Any]:
        readings = readings_for(kind, cell.design, self.rng, upset_rate=self.options["upset_rate"])
        body: dict[str, Any] = {
            "event_id": f"sim-{cell.serial}-{kind}",
            "cell": cell.serial,
            "occurred_at": timezone.now().isoformat(),
            "measurements": readings["measurements"],
            "defects": readings["defects"],
        }
        if "curves" in readings:
            body["curves"] = readings["curves"]
        equipment = Equipment.objects.filter(station=station, active=True).order_by("code").first()
        if equipment is not None:
            if kind == "pressing":
                self.press_cycles[station.code] += 1
                load = (self.press_cycles[station.code] - 1) // CELLS_PER_PRESS_CYCLE + 1
                body["equipment"] = f"{equipment.code}-{timezone.localdate():%y%m%d}-{load:04d}"
            else:
                body["equipment"] = equipment.code
        if kind == "stacking":
            batch = Cell.objects.select_related("batch").get(serial=cell.serial).batch
            body["material_lots"] = {
                m.role: m.lot.code for m in batch.planned_materials.select_related("lot")
            }
        return body

    def set_state(self, code: str, state: str, reason: str) -> None:
        reply = self.clients[code].post(
            "/api/v1/station/state",
            {"state": state, "reason": reason, "occurred_at": timezone.now().isoformat()},
        )
        self.tally.add("state changes" if reply.status == 202 else f"state refused ({reply.code})")
