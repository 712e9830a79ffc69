"""Schema-driven fuzzing of a running imstags with schemathesis, every request AK/SK-signed.

Shared by ``tests/test_fuzz.py`` (a small, derandomised budget on every change) and
``benchmarks/fuzz.py`` (thousands of cases per operation). For each operation of the served
OpenAPI document it generates positive and negative data, and, for operations on an image, a
third pass aimed at an image that exists (so handlers run past "not found"). Every response is
checked: no 5xx, status and body as the document declares, negative data refused with a 4xx,
and an answer within the timeout (a timeout counts as a hang).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import load_all_checks

from imstags.domain import signing
from imstags.domain.credentials import IssuedCredential

load_all_checks()
CHECK_NAMES = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)
REQUEST_TIMEOUT = 15.0


class AkSkAuth(requests.auth.AuthBase):
    """Sign each prepared request (exact method, path, query and body bytes) with
    SDK-HMAC-SHA256, using the same canonical forms the server verifies with."""

    def __init__(self, credential: IssuedCredential) -> None:
        self.credential = credential

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        parts = urlsplit(request.url or "")
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        date = datetime.now(UTC).strftime(signing.DATE_FORMAT)
        request.headers["X-Sdk-Date"] = date
        signed = signing.SignedRequest(
            method=request.method or "GET",
            raw_path=parts.path,
            raw_query=parts.query,
            headers={"x-sdk-date": date},
            body=body if isinstance(body, bytes) else b"",
        )
        canonical = signing.canonical_request(signed, ["x-sdk-date"])
        signature = signing.sign(self.credential.secret, signing.string_to_sign(canonical, date))
        request.headers["Authorization"] = (
            f"{signing.ALGORITHM} Access={self.credential.access}, "
            f"SignedHeaders=x-sdk-date, Signature={signature}"
        )
        return request


@dataclass
class FuzzReport:
    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: int = 0
    hangs: int = 0
    failures: list[str] = field(default_factory=list)
    failure_count: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.cases.values())

    def per_operation(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for label, count in self.cases.items():
            totals[label.rsplit(" [", 1)[0]] += count
        return dict(totals)

    def record_failure(self, label: str, text: str) -> None:
        self.failure_count += 1
        if len(self.failures) < 20:
            self.failures.append(f"{label}: {text[:1500]}")

    def summary(self) -> str:
        lines = [f"{'operation / mode':<70} cases"]
        lines += [f"{label:<70} {count}" for label, count in sorted(self.cases.items())]
        lines.append(f"total cases: {self.total}")
        lines.append(f"statuses: {dict(sorted(self.statuses.items()))}")
        lines.append(f"5xx responses: {self.server_errors}")
        lines.append(f"hangs (no answer within {REQUEST_TIMEOUT:.0f} s): {self.hangs}")
        lines.append(f"check failures: {self.failure_count}")
        lines.append(f"passes without cases: {len(self.skipped)}")
        lines += [f"  {s}" for s in self.skipped]
        return "\n".join(lines)


def create_image(base_url: str, credential: IssuedCredential, image_id: str | None = None) -> str:
    body: dict[str, Any] = {"name": "fuzz", "tags": ["fuzz=yes", "team"]}
    if image_id:
        body["id"] = image_id
    response = requests.post(
        base_url + "/v2/images",
        data=json.dumps(body),
        headers={"Content-Type": "application/json"},
        auth=AkSkAuth(credential),
        timeout=REQUEST_TIMEOUT,
    )
    response.raise_for_status()
    return str(response.json()["id"])


def fuzz(
    base_url: str,
    credential: IssuedCredential,
    *,
    max_examples: int | None = None,
    cases_per_operation: int | None = None,
    random_seed: int | None = None,
    only: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> FuzzReport:
    """Fuzz every operation of the server's OpenAPI document; returns what was seen.

    Budget: ``max_examples`` per pass, or ``cases_per_operation`` shared among an operation's
    passes (positive, negative, existing image). ``random_seed=None`` derandomises (the same
    cases every run, for CI). ``only``: a regular expression on the path.
    """
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    if only:
        schema = schema.include(path_regex=only)
    schema.config.update(base_url=base_url)
    report = FuzzReport()
    session = requests.Session()
    auth = AkSkAuth(credential)
    project = credential.project_id
    image_id = create_image(base_url, credential)

    def redo() -> None:
        """Bring the image back if a case deleted it (so later cases still find it)."""
        shown = requests.get(f"{base_url}/v2/images/{image_id}", auth=auth, timeout=REQUEST_TIMEOUT)
        if shown.status_code == 404:
            create_image(base_url, credential, image_id)

    for result in schema.get_all_operations():
        operation = result.ok()
        has_image = "{image_id}" in operation.path
        passes: list[tuple[str, GenerationMode, dict[str, Any]]] = [
            ("positive", GenerationMode.POSITIVE, {})
        ]
        if can_negate(operation.definition.raw):
            passes.append(("negative", GenerationMode.NEGATIVE, {}))
        else:
            # Every value of every parameter is valid (plain strings, or no parameters): there
            # is no negative data to send. Counted, not hidden.
            report.skipped.append(f"{operation.label} [negative]: nothing can be invalid")
        if has_image:
            passes.append(("existing image", GenerationMode.POSITIVE, {"image_id": image_id}))
        budget = max_examples or -(-(cases_per_operation or 100) // len(passes))
        for mode_name, mode, fixed in passes:
            path_parameters = dict(fixed)
            if "{project_id}" in operation.path:
                path_parameters["project_id"] = project
            label = f"{operation.method.upper()} {operation.path} [{mode_name}]"
            if progress:
                progress(label)
            try:
                strategy = operation.as_strategy(
                    generation_mode=mode, path_parameters=path_parameters or None
                )
            except Exception as exc:  # an operation with nothing to negate, for example
                report.skipped.append(f"{label}: {type(exc).__name__}: {exc}")
                continue

            run_case = _case_runner(label, operation.method, report, session, auth, redo)
            test = given(strategy)(run_case)
            test = settings(
                max_examples=budget,
                deadline=None,
                database=None,
                derandomize=random_seed is None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
                report_multiple_bugs=False,
            )(test)
            if random_seed is not None:
                test = seed(random_seed)(test)
            try:
                test()
            except Unsatisfiable:
                report.skipped.append(f"{label}: no data could be generated")
    return report


_CONSTRAINTS = {
    "enum", "const", "pattern", "format", "minLength", "maxLength", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems",
}  # fmt: skip


def can_negate(operation: dict[str, Any]) -> bool:
    """Whether any input of the operation can be invalid: a body, a required parameter (it
    can be left out) or a parameter whose schema is more than "any string" (the project id is
    fixed by the fuzzer). Without one, negative generation can only spin."""
    if "requestBody" in operation:
        return True
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path" and parameter["name"] == "project_id":
            continue
        if parameter.get("required") and parameter["in"] != "path":
            return True
        schema = parameter.get("schema", {})
        variants = schema.get("anyOf", [schema])
        for variant in variants:
            if variant.get("type") not in (None, "string", "null") or _CONSTRAINTS & set(variant):
                return True
    return False


def _case_runner(
    label: str,
    method: str,
    report: FuzzReport,
    session: requests.Session,
    auth: AkSkAuth,
    recreate_image: Callable[[], None],
) -> Callable[[schemathesis.Case], None]:
    def run_case(case: schemathesis.Case) -> None:
        report.cases[label] += 1
        try:
            response = case.call(session=session, auth=auth, timeout=REQUEST_TIMEOUT)
        except requests.Timeout:
            report.hangs += 1
            report.record_failure(label, "no answer within the timeout")
            return
        except requests.ConnectionError as exc:
            report.record_failure(label, f"connection error: {exc}")
            return
        report.statuses[response.status_code] += 1
        if response.status_code >= 500:
            report.server_errors += 1
        try:
            case.validate_response(response, checks=_checks())
        except AssertionError as exc:
            report.record_failure(label, str(exc))
        except BaseExceptionGroup as group:
            report.record_failure(label, "; ".join(str(e) for e in group.exceptions))
        if method.upper() == "DELETE" and 200 <= response.status_code < 300:
            recreate_image()

    return run_case


def _checks() -> list[Any]:
    from schemathesis.checks import CHECKS

    return [CHECKS.get_one(name) for name in CHECK_NAMES]


def new_project() -> str:
    return uuid.uuid4().hex
