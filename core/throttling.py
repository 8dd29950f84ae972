"""Rate limits of the API (DRF throttles) counted in the shared cache, and the client's address.

DRF's own SimpleRateThrottle keeps every request's time in one cached list that each request
reads and writes whole: two processes answering at once overwrite each other's entry, and a
list of a thousand entries is re-pickled on every request. These count in fixed windows with one
atomic increment (INCR on Redis), whatever the number of gunicorn workers and replicas.

The limits are settings (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], by scope), read at request time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT reverse proxies the
    address the outermost of them saw (X-Forwarded-For, read from the right: what a client writes
    there itself is on the left and is never trusted). The throttles and django-axes both use it."""
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [a for a in forwarded if a]
    return forwarded[-proxies] if len(forwarded) >= proxies else remote


def _count(key: str, timeout: int) -> int:
    """Add one to the counter `key` (kept `timeout` seconds); the new count."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        # One round trip (INCR and EXPIRE in a MULTI) instead of the three of add-then-incr:
        # every station request passes two throttles (measured here: 0.73 ms -> 0.39 ms for both).
        full_key = backend.make_and_validate_key(key)
        with backend._cache.get_client(full_key, write=True).pipeline() as pipe:
            count, _ = pipe.incr(full_key).expire(full_key, timeout).execute()
        return count
    if backend.add(key, 1, timeout):
        return 1
    try:
        return backend.incr(key)
    except ValueError:  # expired between add and incr
        backend.set(key, 1, timeout)
        return 1


class FixedWindowRateThrottle(SimpleRateThrottle):
    """A DRF rate ("50/s", "3000/min") counted per fixed window of its period.

    A window admits up to the rate, so two windows back to back admit at most twice it within one
    period. Should the cache be unreachable the request is let through (and logged): a throttle
    protects the service, it must never be the reason a station's results are refused.
    """

    def get_rate(self) -> str | None:
        # Read each time rather than frozen at import, so settings (and tests) can change it.
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(
                f"No rate for throttle scope {self.scope!r} in DEFAULT_THROTTLE_RATES."
            ) from None

    def window(self) -> tuple[str, float]:
        """The current window's counter key and when the window ends (timer seconds)."""
        index = math.floor(self.timer() / self.duration)
        return f"{self.key}:{index}", (index + 1) * self.duration

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        counter, self.window_ends = self.window()
        try:
            count = _count(counter, self.duration + 1)
        except Exception:
            logger.warning("Throttle %s not counted: the cache is unreachable", self.scope)
            return True
        return count <= self.num_requests

    def wait(self) -> float:
        # Whole seconds, at least one: DRF writes Retry-After as an integer.
        return max(1, math.ceil(self.window_ends - self.timer()))


class FailedAuthenticationThrottle(FixedWindowRateThrottle):
    """Failed authentication per client address (bad station tokens, bad personal tokens).

    Once an address has failed the rate's number of times within a window it is refused (429
    `throttled`) for a whole period, whatever the credential it sends next: were a correct one let
    through, the refusals would tell a guesser nothing. So an address fails at most twice the rate
    in any period (the rate's number just before a window ends, again just after).
    """

    scope = "failed_authentication"

    def get_cache_key(self, request: Any, view: Any = None) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}

    def refuse_if_blocked(self, request: Any) -> None:
        if self.rate is None:
            return
        try:
            until = cache.get(self._blocked_key(request))
        except Exception:
            logger.warning("Failed authentications not checked: the cache is unreachable")
            return
        if until is not None and until > self.timer():
            raise exceptions.Throttled(wait=max(1, math.ceil(until - self.timer())))

    def record_failure(self, request: Any) -> None:
        if self.rate is None:
            return
        self.key = self.get_cache_key(request)
        counter, _ = self.window()
        try:
            if _count(counter, self.duration + 1) >= self.num_requests:
                until = self.timer() + self.duration
                cache.set(self._blocked_key(request), until, self.duration + 1)
                logger.warning(
                    "Authentication from %s refused for %d s: %d failures within %d s",
                    client_address(request),
                    self.duration,
                    self.num_requests,
                    self.duration,
                )
        except Exception:
            logger.warning("Failed authentication not counted: the cache is unreachable")

    def _blocked_key(self, request: Any) -> str:
        return f"{self.get_cache_key(request)}:blocked"


@contextmanager
def counting_failed_authentication(request: Any) -> Iterator[None]:
    """Around checking a credential the request presents: refuses an address that failed too
    often (429 with Retry-After) before looking at it, and counts it if it fails."""
    throttle = FailedAuthenticationThrottle()
    throttle.refuse_if_blocked(request)
    try:
        yield
    except exceptions.AuthenticationFailed:
        throttle.record_failure(request)
        raise
