"""The failed-login throttle as a unit (its use on POST /v3/auth/tokens is in test_security)."""

from __future__ import annotations

from imstags.domain.throttle import FailureThrottle, Limit, LoginThrottle


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failure_throttle_allows_up_to_the_limit_then_refuses():
    clock = FakeClock()
    throttle = FailureThrottle(Limit(3, 60), clock=clock)
    for _ in range(2):
        throttle.record_failure("alice")
        assert throttle.retry_after("alice") == 0
    throttle.record_failure("alice")
    assert throttle.retry_after("alice") == 60


def test_failure_throttle_window_slides_from_the_oldest_failure():
    clock = FakeClock()
    throttle = FailureThrottle(Limit(2, 60), clock=clock)
    throttle.record_failure("k")
    clock.now += 30
    throttle.record_failure("k")
    assert throttle.retry_after("k") == 30
    clock.now += 30
    assert throttle.retry_after("k") == 0  # the first failure left the window


def test_failure_throttle_success_forgets_failures():
    throttle = FailureThrottle(Limit(2, 60), clock=FakeClock())
    throttle.record_failure("k")
    throttle.record_failure("k")
    throttle.record_success("k")
    assert throttle.retry_after("k") == 0


def test_failure_throttle_keys_are_independent():
    throttle = FailureThrottle(Limit(1, 60), clock=FakeClock())
    throttle.record_failure("a")
    assert throttle.retry_after("a") > 0
    assert throttle.retry_after("b") == 0


def test_failure_throttle_disabled_limit_never_refuses():
    throttle = FailureThrottle(Limit(0, 60), clock=FakeClock())
    for _ in range(100):
        throttle.record_failure("k")
    assert throttle.retry_after("k") == 0


def test_failure_throttle_memory_is_bounded_by_max_keys():
    throttle = FailureThrottle(Limit(1, 60), max_keys=100, clock=FakeClock())
    for i in range(1000):
        throttle.record_failure(f"user{i}")
    assert len(throttle._failures) == 100
    assert throttle.retry_after("user999") > 0
    assert throttle.retry_after("user0") == 0  # evicted, the least recently failed


def test_failure_throttle_keeps_at_most_limit_timestamps_per_key():
    throttle = FailureThrottle(Limit(3, 60), clock=FakeClock())
    for _ in range(1000):
        throttle.record_failure("k")
    assert len(throttle._failures["k"]) == 3


def test_login_throttle_per_client_limit_applies_across_users():
    clock = FakeClock()
    throttle = LoginThrottle(Limit(5, 60), Limit(3, 60), clock=clock)
    for i in range(3):
        throttle.failed(f"user{i}", "10.0.0.1")
    assert throttle.retry_after("fresh-user", "10.0.0.1") == 60
    assert throttle.retry_after("fresh-user", "10.0.0.2") == 0


def test_login_throttle_success_clears_the_pair_but_not_the_client():
    throttle = LoginThrottle(Limit(2, 60), Limit(3, 60), clock=FakeClock())
    throttle.failed("u", "ip")
    throttle.failed("u", "ip")
    assert throttle.retry_after("u", "ip") > 0
    throttle.succeeded("u", "ip")
    assert throttle.retry_after("u", "ip") == 0
    throttle.failed("v", "ip")
    assert throttle.retry_after("w", "ip") > 0


def test_login_throttle_failures_from_one_address_do_not_lock_the_user_out_elsewhere():
    """Per (user, client) counting: someone else's failures never stop a correct password
    from an address that has not been failing (docs/decisions.md)."""
    throttle = LoginThrottle(Limit(2, 60), Limit(100, 60), clock=FakeClock())
    for _ in range(10):
        throttle.failed("alice-id", "10.0.0.66")
    assert throttle.retry_after("alice-id", "10.0.0.66") > 0
    assert throttle.retry_after("alice-id", "10.0.0.7") == 0


def test_login_throttle_unknown_names_share_one_counter_per_client():
    throttle = LoginThrottle(Limit(2, 60), Limit(100, 60), clock=FakeClock())
    throttle.failed(None, "ip")
    throttle.failed(None, "ip")
    assert throttle.retry_after(None, "ip") > 0
    assert throttle.retry_after("someone", "ip") == 0


def test_login_throttle_keys_are_fixed_size_digests():
    throttle = LoginThrottle(Limit(5, 60), Limit(5, 60), clock=FakeClock())
    throttle.failed("u" * 100_000, "c" * 100_000)
    for table in (throttle.users, throttle.clients):
        assert [len(key) for key in table._failures] == [16]


def test_failure_throttle_drops_entries_whose_window_has_passed():
    clock = FakeClock()
    throttle = FailureThrottle(Limit(3, 60), clock=clock)
    for i in range(500):
        throttle.record_failure(f"user{i}")
    assert len(throttle) == 500
    clock.now += 61
    throttle.record_failure("late")
    assert len(throttle) == 1  # expired without being asked about


def test_login_throttle_rounds_wait_up_to_whole_seconds():
    clock = FakeClock()
    throttle = LoginThrottle(Limit(1, 10), Limit(0, 0), clock=clock)
    throttle.failed("u", "ip")
    clock.now += 9.5
    assert throttle.retry_after("u", "ip") == 1
