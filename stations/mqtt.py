"""The MQTT bridge: station equipment's messages into the one intake (API.md "Plant messaging").

`python manage.py mqtt_bridge` subscribes with QoS 1 to `mes/v1/+/results` and `mes/v1/+/state`
(and `mes/v1/env/+/readings` where the environment app is installed) in a persistent session
under a fixed client id (settings.MQTT_CLIENT_ID): what is published while the bridge is down
waits on the broker. Each message goes to the same intake as HTTP (stations.intake), in arrival
order, one at a time; its PUBACK is sent only once the intake has committed (paho's manual_ack),
so a bridge killed between receiving and committing gets the message again from the broker, and
the event_id makes a message committed but not acknowledged a duplicate, never a second row.

Who may publish under which station's topic is the broker's access control (per-station
credentials and an ACL: deploy/mosquitto/). The bridge trusts the topic's station code, as the
HTTP API trusts a token; it still refuses a code no station has, and a station whose every API
token has been revoked (revocation cuts a station off on every connector), in the reply.

Replies go to `mes/v1/{station}/replies` (QoS 1): the HTTP reply's body, `{"accepted",
"duplicates"}` for results, `{"state", "occurred_at"}` for state, or the error body `{"code",
"detail", "errors"}`. A message that is not JSON, too large or malformed gets the error reply and
is acknowledged (it would fail the same way forever); it writes nothing. Under MQTT 5 a request's
correlation data is echoed on the reply, and its response topic honoured.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import queue
import signal
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import close_old_connections, connection
from django.utils import timezone
from django.utils.translation import gettext as _
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from core.api import DATABASE_UNAVAILABLE, error_body
from core.errors import DomainError
from core.validation import is_identifier
from lines.models import Station
from stations import bridge_health, intake
from stations.models import StationToken
from stations.schema import MAX_RESULTS_BODY_BYTES, decode_results

logger = logging.getLogger(__name__)

# Dry-room readings are the environment app's; the bridge subscribes to them where it exists.
READINGS_INTAKE = "environment.intake"


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False


def parse_url(url: str) -> Broker:
    """mqtt://[user:password@]host[:port] or mqtts://... (TLS, port 8883 unless given)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp") or not parts.hostname:
        raise ValueError(f"MQTT_URL must be mqtt://host[:port] or mqtts://..., not {url!r}")
    tls = parts.scheme == "mqtts"
    return Broker(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def readings_intake() -> Callable[[str, dict], dict] | None:
    """environment.intake.accept_readings where that app is installed, else None."""
    if importlib.util.find_spec(READINGS_INTAKE.split(".")[0]) is None:
        return None
    if importlib.util.find_spec(READINGS_INTAKE) is None:
        return None
    return importlib.import_module(READINGS_INTAKE).accept_readings


def topics(root: str | None = None, *, readings: bool | None = None) -> list[str]:
    root = root or settings.MQTT_TOPIC_ROOT
    subscribed = [f"{root}/+/results", f"{root}/+/state"]
    if readings if readings is not None else readings_intake() is not None:
        subscribed.append(f"{root}/env/+/readings")
    return subscribed


# ---------------------------------------------------------------- one message


@dataclass(frozen=True)
class Reply:
    topic: str
    body: dict[str, Any]
    refused: bool

    def payload(self) -> bytes:
        return json.dumps(self.body, cls=DjangoJSONEncoder).encode()


def handle(topic: str, payload: bytes, *, root: str | None = None) -> Reply | None:
    """What one message asks, done through the intake; the reply to publish (None: a topic the
    bridge does not serve). Raises the database's errors (DATABASE_UNAVAILABLE): the caller
    keeps the message unacknowledged and tries again."""
    root = root or settings.MQTT_TOPIC_ROOT
    if not topic.startswith(root + "/"):
        return None
    levels = topic[len(root) + 1 :].split("/")
    if len(levels) == 3 and levels[0] == "env" and levels[2] == "readings":
        return _readings(root, levels[1], payload)
    if len(levels) != 2 or levels[1] not in ("results", "state"):
        return None
    code, kind = levels
    reply_topic = f"{root}/{code}/replies"
    try:
        station = _station(code)
        if len(payload) > MAX_RESULTS_BODY_BYTES:
            raise DomainError(
                "payload_too_large",
                _("A message may be at most 16 MiB; send fewer results per message."),
                status=413,
            )
        if kind == "results":
            accepted = intake.accept_results(station, decode_results(payload))
            body = {"accepted": accepted.accepted, "duplicates": accepted.duplicates}
        else:
            body = intake.accept_state(station, _json_object(payload), by=f"station:{code}")
    except DomainError as error:
        logger.warning("Refused a message on %s: %s %s", topic, error.code, error.detail)
        return Reply(reply_topic, error_body(error.code, error.detail, error.errors), True)
    return Reply(reply_topic, body, False)


def _station(code: str) -> Station:
    station = (
        Station.objects.select_related("line").filter(code=code).first()
        if is_identifier(code) and len(code) <= 40
        else None
    )
    if station is None:
        raise DomainError("unknown_station", _("No station %(code)s.") % {"code": code}, status=404)
    tokens = StationToken.objects.filter(station=station)
    if tokens.exists() and not tokens.filter(revoked_at__isnull=True).exists():
        raise DomainError(
            "not_authenticated",
            _("Station %(code)s's credentials have been revoked; it may not send.")
            % {"code": code},
            status=401,
        )
    return station


def _json_object(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, RecursionError) as error:
        raise DomainError(
            "invalid", _("The body is not valid JSON: %(error)s") % {"error": error}, status=400
        ) from None


def _readings(root: str, zone: str, payload: bytes) -> Reply | None:
    accept_readings = readings_intake()
    if accept_readings is None:
        return None
    reply_topic = f"{root}/env/{zone}/replies"
    try:
        if len(payload) > MAX_RESULTS_BODY_BYTES:
            raise DomainError(
                "payload_too_large", _("A message may be at most 16 MiB."), status=413
            )
        body = _json_object(payload)
        if not isinstance(body, dict):
            raise DomainError("invalid", _("A readings message is a JSON object."), status=400)
        return Reply(reply_topic, accept_readings(zone, body), False)
    except DomainError as error:
        logger.warning("Refused readings for zone %s: %s %s", zone, error.code, error.detail)
        return Reply(reply_topic, error_body(error.code, error.detail, error.errors), True)


# ---------------------------------------------------------------- the bridge process


@dataclass
class Received:
    message: mqtt.MQTTMessage
    connection: int  # the connection it arrived on: a PUBACK belongs to that one


@dataclass
class Health:
    connected: bool = False
    connected_since: str | None = None
    last_message_at: str | None = None
    counts: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "connected_since": self.connected_since,
            "last_message_at": self.last_message_at,
            "counts": dict(self.counts),
        }


class Bridge:
    """The paho network loop runs in its own thread and only queues what arrives; this thread
    (the command's) takes messages in order, calls the intake, publishes the reply and then
    acknowledges, so PUBACKs leave in the order the messages came (MQTT requires it)."""

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        protocol: str = "5",
        root: str | None = None,
        session_expiry_s: int = 7 * 24 * 3600,
    ) -> None:
        self.broker = parse_url(url)
        self.root = root or settings.MQTT_TOPIC_ROOT
        self.v5 = protocol == "5"
        self.session_expiry_s = session_expiry_s
        self.topics = topics(self.root)
        self.inbox: queue.Queue[Received] = queue.Queue()
        self.stopping = threading.Event()
        self.connection = 0
        self.health = Health()
        self._health_written = 0.0
        self._health_changed = False
        kwargs: dict[str, Any] = {
            "callback_api_version": CallbackAPIVersion.VERSION2,
            "client_id": client_id,
            "protocol": mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311,
            "manual_ack": True,
        }
        if not self.v5:
            kwargs["clean_session"] = False  # MQTT 5 says clean_start at connect instead
        self.client = mqtt.Client(**kwargs)
        if self.broker.username:
            self.client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            self.client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        # Reconnects by itself: 1 s after a loss, doubling to 30 s while the broker stays away.
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # -- paho's thread

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            logger.error("The broker refused the bridge: %s", reason_code)
            return
        self.connection += 1
        self.health.connected = True
        self.health.connected_since = timezone.now().isoformat()
        self.health.counts["connections"] += 1
        self._health_changed = True
        logger.info(
            "Connected to %s:%s (session present: %s); subscribing to %s",
            self.broker.host,
            self.broker.port,
            flags.session_present,
            ", ".join(self.topics),
        )
        if self.v5:
            client.subscribe([(t, SubscribeOptions(qos=1)) for t in self.topics])
        else:
            client.subscribe([(t, 1) for t in self.topics])

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.health.connected = False
        if not self.stopping.is_set():
            logger.warning("Lost the broker (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        self.inbox.put(Received(message, self.connection))

    # -- this thread

    def run(self) -> None:
        connect_properties = None
        if self.v5:
            connect_properties = Properties(PacketTypes.CONNECT)
            connect_properties.SessionExpiryInterval = self.session_expiry_s
        self.client.connect_async(
            self.broker.host,
            self.broker.port,
            keepalive=30,
            clean_start=False if self.v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=connect_properties,
        )
        self.client.loop_start()
        try:
            while not self.stopping.is_set():
                self._beat()
                try:
                    received = self.inbox.get(timeout=0.5)
                except queue.Empty:
                    continue
                self.process(received)
        finally:
            self.health.connected = False
            # Whatever is queued and unacknowledged stays in the broker's session.
            self.client.disconnect()
            self.client.loop_stop()
            bridge_health.write(self.health.as_dict())

    def stop(self, *args: Any) -> None:
        self.stopping.set()

    def process(self, received: Received) -> None:
        message = received.message
        reply = self._handle_until_stored(message)
        if reply is None:
            if not self.stopping.is_set():
                self.health.counts["ignored"] += 1
                self._ack(received)
            return
        self.health.counts["refused" if reply.refused else "accepted"] += 1
        self._health_changed = True
        self.health.last_message_at = timezone.now().isoformat()
        topic, properties = reply.topic, None
        if self.v5:
            request = getattr(message, "properties", None)
            properties = Properties(PacketTypes.PUBLISH)
            if getattr(request, "CorrelationData", None):
                properties.CorrelationData = request.CorrelationData
            if getattr(request, "ResponseTopic", None) and not reply.refused:
                topic = request.ResponseTopic
        self.client.publish(topic, reply.payload(), qos=1, properties=properties)
        self._ack(received)

    def _handle_until_stored(self, message: mqtt.MQTTMessage) -> Reply | None:
        """The message's reply once the intake is done with it; while the database cannot be
        reached, tries again (1 s, doubling to 30 s): the message stays unacknowledged."""
        delay = 1.0
        while True:
            try:
                return handle(message.topic, message.payload, root=self.root)
            except DATABASE_UNAVAILABLE as error:
                self.health.counts["database_errors"] += 1
                logger.error("Database unavailable (%s); message kept unacknowledged", error)
                connection.close()
                if self.stopping.wait(delay):
                    return None
                delay = min(delay * 2, 30.0)
                self._beat()
            finally:
                close_old_connections()

    def _ack(self, received: Received) -> None:
        # On a connection lost since, the broker sends the message again on the new one (it is
        # in the session, unacknowledged); acknowledging the old id there could ack another.
        if received.connection == self.connection:
            self.client.ack(received.message.mid, received.message.qos)

    def _beat(self) -> None:
        # Every HEARTBEAT_S, and within a second of a change (a Redis write a second at most).
        now = time.monotonic()
        since = now - self._health_written
        if since >= bridge_health.HEARTBEAT_S or (self._health_changed and since >= 1.0):
            self._health_changed = False
            self._health_written = now
            try:
                bridge_health.write(self.health.as_dict())
            except Exception:  # the cache being away must not stop the intake
                logger.exception("Could not write the bridge's heartbeat")


def run_bridge(**options: Any) -> None:
    bridge = Bridge(**options)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, bridge.stop)
    bridge.run()
