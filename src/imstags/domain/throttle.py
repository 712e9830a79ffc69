"""Failed-attempt throttling: a sliding window of failures per key, in one process's memory.

Used for password logins (``POST /v3/auth/tokens``), keyed by (the user the request resolves
to, the client address) and by the client address alone: after ``max_failures`` failures
within ``window_seconds`` a key is refused, without the password being checked, until its
oldest counted failure leaves the window. A success forgets the pair's failures. Checking
before verifying matters: argon2 is deliberately slow, so a throttled guesser costs the server
almost nothing.

Why per (user, client) and not per user: a per-user lock lets anyone lock a user out by
failing on purpose; counted per pair, someone else's failures never stop a correct password
from an address that has not been failing (docs/decisions.md). Names that resolve to no user
share one counter per client, so inventing names buys nothing.

The state is per process (several workers each count on their own, so the effective limit is
multiplied by the number of workers) and bounded: keys are 16-byte digests, entries whose
window has passed are dropped as new failures come, and past ``max_keys`` the least recently
failed keys are forgotten.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
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
        self._failures: OrderedDict[Hashable, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: Hashable) -> float:
        """Seconds until ``key`` may try again; 0 when it may try now."""
        if not self.limit.enabled:
            return 0.0
        with self._lock:
            times = self._prune(key, self._clock())
            if times is None or len(times) < self.limit.max_failures:
                return 0.0
            return max(0.0, times[0] + self.limit.window_seconds - self._clock())

    def record_failure(self, key: Hashable) -> None:
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
            self._expire(now)
            while len(self._failures) > self._max_keys:
                self._failures.popitem(last=False)

    def __len__(self) -> int:
        return len(self._failures)

    def _expire(self, now: float) -> None:
        """Drop the keys whose last failure has left the window. Keys are in order of last
        failure, so the expired ones are at the front: the cost is one step per key dropped."""
        horizon = now - self.limit.window_seconds
        while self._failures:
            oldest = next(iter(self._failures.values()))
            if oldest and oldest[-1] > horizon:
                break
            self._failures.popitem(last=False)

    def record_success(self, key: Hashable) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _prune(self, key: Hashable, now: float) -> deque[float] | None:
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
    """Limits on failed logins per (user, client address) and per client address, checked
    together. Users are named by their id (``None`` for a name that resolves to no user), and
    every key is a digest, whatever its length in the request."""

    def __init__(
        self,
        per_user: Limit,
        per_client: Limit,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.users = FailureThrottle(per_user, max_keys=max_keys, clock=clock)
        self.clients = FailureThrottle(per_client, max_keys=max_keys, clock=clock)

    def retry_after(self, user_id: str | None, client: str) -> int:
        """Whole seconds to wait before another attempt (0: go ahead)."""
        wait = max(
            self.users.retry_after(_pair_key(user_id, client)),
            self.clients.retry_after(_digest("client", client)),
        )
        return math.ceil(wait)

    def client_retry_after(self, client: str) -> int:
        """The client address's own wait, known before the user is looked up."""
        return math.ceil(self.clients.retry_after(_digest("client", client)))

    def failed(self, user_id: str | None, client: str) -> None:
        self.users.record_failure(_pair_key(user_id, client))
        self.clients.record_failure(_digest("client", client))

    def succeeded(self, user_id: str | None, client: str) -> None:
        self.users.record_success(_pair_key(user_id, client))


def _pair_key(user_id: str | None, client: str) -> bytes:
    return _digest("user" if user_id is not None else "unknown", user_id or "", client)


def _digest(*parts: str) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        encoded = part.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(4, "big"))
        digest.update(encoded)
    return digest.digest()
