"""Failed-attempt throttling: a sliding window of failures per key, in one process's memory.

Used for password logins (``POST /v3/auth/tokens``), keyed by the user named in the request
and by the client address: after ``max_failures`` failures within ``window_seconds`` a key is
refused, without the password being checked, until its oldest counted failure leaves the
window. A success forgets the key's failures. Checking before verifying matters: argon2 is
deliberately slow, so a throttled guesser costs the server almost nothing.

The state is per process (several workers each count on their own, so the effective limit is
multiplied by the number of workers) and bounded: past ``max_keys`` the least recently failed
keys are forgotten, so that a stream of invented user names cannot grow memory without end.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    max_failures: int
    window_seconds: float

    @property
    def enabled(self) -> bool:
        return self.max_failures > 0 and self.window_seconds > 0


class FailureThrottle:
    def __init__(
        self,
        limit: Limit,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self._max_keys = max_keys
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it may try now."""
        if not self.limit.enabled:
            return 0.0
        with self._lock:
            times = self._prune(key, self._clock())
            if times is None or len(times) < self.limit.max_failures:
                return 0.0
            return max(0.0, times[0] + self.limit.window_seconds - self._clock())

    def record_failure(self, key: str) -> None:
        if not self.limit.enabled:
            return
        with self._lock:
            now = self._clock()
            times = self._prune(key, now)
            if times is None:
                times = self._failures[key] = deque()
            times.append(now)
            # Keep no more than the limit needs: the oldest relevant failure is what counts.
            while len(times) > self.limit.max_failures:
                times.popleft()
            self._failures.move_to_end(key)
            while len(self._failures) > self._max_keys:
                self._failures.popitem(last=False)

    def record_success(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _prune(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        horizon = now - self.limit.window_seconds
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times


class LoginThrottle:
    """Per-user and per-client-address limits on failed logins, checked together."""

    def __init__(
        self,
        per_user: Limit,
        per_client: Limit,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.users = FailureThrottle(per_user, clock=clock)
        self.clients = FailureThrottle(per_client, clock=clock)

    def retry_after(self, user_key: str, client_key: str) -> int:
        """Whole seconds to wait before another attempt (0: go ahead)."""
        wait = max(self.users.retry_after(user_key), self.clients.retry_after(client_key))
        return math.ceil(wait)

    def failed(self, user_key: str, client_key: str) -> None:
        self.users.record_failure(user_key)
        self.clients.record_failure(client_key)

    def succeeded(self, user_key: str) -> None:
        self.users.record_success(user_key)


def user_key(parts: Iterable[str | None]) -> str:
    """A stable key for "the user this request names", whichever way it names it."""
    return "\x1f".join((part or "").casefold() for part in parts)
