"""Fault injection: rules that make chosen requests fail, slow down or lose their connection.

Users of the emulator test their clients' retries and timeouts with them. A rule matches by
operation (the reference's operation name, the handler's name or the route template), method,
project and optionally a tag key named by the request; its effect is a delay, then an HTTP
status with an IMS error body of the user's choice or a dropped connection. A rule fires with
its probability, drawn from its own seeded generator (so a seeded run is the same run every
time), at most ``times`` times. The check happens before the request reaches its handler: an
injected failure of a write writes nothing.

Rules live in the process (set from a file at start, or through the admin API): with several
worker processes each has its own copy and its own counts. This module knows nothing of HTTP;
:mod:`imstags.api.faults` gives it the facts of a request and applies the effect.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imstags.errors import BadRequest, NotFound
from imstags.services import metrics
from imstags.services.documents import read_document

log = logging.getLogger("imstags.faults")

RULE_FIELDS = frozenset(
    {
        "id", "operation", "method", "project", "tag_key", "status", "code", "message",
        "delay", "drop", "hold", "kill", "probability", "times", "seed",
    }
)  # fmt: skip
MAX_DELAY_SECONDS = 600.0
MAX_RULES = 1000
UPLOAD_OPERATION = "upload_image_data"  # the handler that status rules act on


@dataclass(frozen=True)
class StatusFault:
    """What a fired status rule does to an upload: hold the image ``saving`` for ``hold``
    seconds after its data is stored, or make it ``killed`` (its data discarded)."""

    hold: float = 0.0
    kill: bool = False


@dataclass(frozen=True)
class RequestFacts:
    """What a rule can match on, as the HTTP layer found it."""

    method: str
    operations: tuple[str, ...]  # operation name, handler name, route template
    project: str | None


@dataclass
class FaultRule:
    id: str
    operation: str | None = None
    method: str | None = None
    project: str | None = None
    tag_key: str | None = None
    status: int | None = None
    code: str = "IMG.0061"
    message: str = "Injected fault."
    delay: float = 0.0
    drop: bool = False
    hold: float = 0.0
    kill: bool = False
    probability: float = 1.0
    times: int | None = None
    seed: int | None = None
    matched: int = 0
    fired: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False)

    @property
    def status_fault(self) -> StatusFault | None:
        """The upload's status effect, or None for the request effects."""
        return StatusFault(self.hold, self.kill) if self.hold or self.kill else None

    def matches(self, facts: RequestFacts) -> bool:
        if self.status_fault is not None and UPLOAD_OPERATION not in facts.operations:
            return False  # status rules act on image data uploads only
        return (
            (self.method is None or self.method == facts.method)
            and (self.operation is None or self.operation in facts.operations)
            and (self.project is None or self.project == facts.project)
        )

    def describe(self) -> dict[str, Any]:
        shown = {
            "id": self.id, "operation": self.operation, "method": self.method,
            "project": self.project, "tag_key": self.tag_key, "status": self.status,
            "code": self.code, "message": self.message, "delay": self.delay, "drop": self.drop,
            "hold": self.hold, "kill": self.kill, "probability": self.probability,
            "times": self.times, "seed": self.seed,
            "matched": self.matched, "fired": self.fired,
        }  # fmt: skip
        return shown


def parse_rule(raw: object) -> FaultRule:
    """A rule from its document form (the file's list entries, the admin API's body)."""
    if not isinstance(raw, Mapping):
        raise BadRequest("a fault rule is an object")
    unknown = set(raw) - RULE_FIELDS
    if unknown:
        raise BadRequest(f"unknown fault rule field(s): {', '.join(sorted(map(str, unknown)))}")
    rule_id = raw.get("id") or "fault-" + uuid.uuid4().hex[:8]
    rule = FaultRule(
        id=_text(rule_id, "id", 64),
        operation=_optional_text(raw.get("operation"), "operation"),
        method=(_optional_text(raw.get("method"), "method") or "").upper() or None,
        project=_optional_text(raw.get("project"), "project"),
        tag_key=_optional_text(raw.get("tag_key"), "tag_key"),
        status=_optional_int(raw.get("status"), "status", 400, 599),
        code=_text(raw.get("code", "IMG.0061"), "code", 32),
        message=_text(raw.get("message", "Injected fault."), "message", 1024),
        delay=_number(raw.get("delay", 0.0), "delay", 0.0, MAX_DELAY_SECONDS),
        drop=_flag(raw.get("drop", False), "drop"),
        hold=_number(raw.get("hold", 0.0), "hold", 0.0, MAX_DELAY_SECONDS),
        kill=_flag(raw.get("kill", False), "kill"),
        probability=_number(raw.get("probability", 1.0), "probability", 0.0, 1.0),
        times=_optional_int(raw.get("times"), "times", 0, 2**31),
        seed=_optional_int(raw.get("seed"), "seed", -(2**63), 2**63),
    )
    if rule.status is not None and rule.drop:
        raise BadRequest("a fault rule answers with a status or drops the connection, not both")
    if rule.status_fault is not None and (rule.status is not None or rule.drop):
        raise BadRequest("a fault rule holds or kills an upload, or fails it, not both")
    if rule.hold and rule.kill:
        raise BadRequest("a fault rule holds an upload or kills it, not both")
    if rule.status is None and not rule.drop and not rule.delay and rule.status_fault is None:
        raise BadRequest("a fault rule needs an effect: status, delay, drop, hold or kill")
    rule._random = random.Random(rule.seed)  # noqa: S311  # reproducible draws, not secrets
    return rule


def _text(value: object, name: str, limit: int) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise BadRequest(f"fault rule {name} is a string of 1 to {limit} characters")
    return value


def _optional_text(value: object, name: str) -> str | None:
    return None if value is None else _text(value, name, 255)


def _optional_int(value: object, name: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"fault rule {name} is an integer from {low} to {high}")
    return value


def _number(value: object, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BadRequest(f"fault rule {name} is a number from {low} to {high}")
    return float(value)


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"fault rule {name} is true or false")
    return value


class FaultBook:
    """The process's rules, checked in the order they were added; thread-safe."""

    def __init__(self, rules: Iterable[FaultRule] = ()) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        for rule in rules:
            self.add(rule)

    @property
    def active(self) -> bool:
        """Whether any rule exists: without one, requests pass untouched."""
        return bool(self._rules)

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            if any(existing.id == rule.id for existing in self._rules):
                raise BadRequest(f"a fault rule with id {rule.id} exists already")
            if len(self._rules) >= MAX_RULES:
                raise BadRequest(f"at most {MAX_RULES} fault rules")
            self._rules.append(rule)
        return rule

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.describe() for rule in self._rules]

    def remove(self, rule_id: str) -> None:
        with self._lock:
            kept = [rule for rule in self._rules if rule.id != rule_id]
            if len(kept) == len(self._rules):
                raise NotFound(f"no fault rule {rule_id}")
            self._rules = kept

    def clear(self) -> int:
        with self._lock:
            removed, self._rules = len(self._rules), []
        return removed

    def candidates(self, facts: RequestFacts) -> list[FaultRule]:
        """Rules that match the request apart from the tag key (which needs its body)."""
        return [rule for rule in list(self._rules) if rule.matches(facts)]

    def draw(
        self, candidates: list[FaultRule], tag_keys: frozenset[str] | None
    ) -> FaultRule | None:
        """The first candidate that fires for this request, counted; None if none does."""
        with self._lock:
            for rule in candidates:
                if rule.tag_key is not None and (tag_keys is None or rule.tag_key not in tag_keys):
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                rule.matched += 1
                if rule.probability < 1.0 and rule._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                return rule
        return None


def load_rules(path: Path) -> list[FaultRule]:
    """Rules from a JSON or YAML file: a list of rules, or ``{"faults": [...]}``."""
    document = read_document(path)
    if isinstance(document, Mapping):
        document = document.get("faults", [])
    if not isinstance(document, list):
        raise BadRequest(f"{path}: a list of fault rules, or an object with a 'faults' list")
    return [parse_rule(raw) for raw in document]


def log_fired(rule: FaultRule, method: str, route: str, request_id: str | None) -> None:
    effect = (
        "drop" if rule.drop
        else f"{rule.status} {rule.code}" if rule.status
        else "kill" if rule.kill
        else f"hold {rule.hold:g}s" if rule.hold
        else "delay"
    )  # fmt: skip
    metrics.FAULTS_INJECTED.labels(effect.split(" ", 1)[0] if not rule.status else "status").inc()
    log.warning(
        "fault rule %s fired: %s%s on %s %s [%s]",
        rule.id,
        effect,
        f" after {rule.delay:g}s" if rule.delay and effect != "delay" else "",
        method,
        route,
        request_id or "-",
    )
