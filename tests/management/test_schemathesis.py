"""Schemathesis against the served ``/api/v2/openapi.json`` (issue 14): every operation the
document lists (whatever resources exist when it runs), with data that fits the schemas and
data that does not, a bounded and reproducible number of cases (``derandomize``, no example
database), with a token holding every management scope. Each answer must not be a 5xx, its
status must be one the operation documents, and its body must match the documented schema
(errors included: Auth0's problem shape)."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import checks
from schemathesis.generation import GenerationMode

from tests.management.conftest import Mgmt, grant

# the whole module's budget, shared by every operation, both modes (more, locally: set
# IDP_SCHEMATHESIS_CASES=5000)
CASES = int(os.environ.get("IDP_SCHEMATHESIS_CASES", "400"))
PER_OPERATION = (3, max(12, CASES // 40))  # at least, at most, per operation and mode
NEGATIVE_SHARE = 0.5  # negative cases per positive one
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


def _budget(operations: int) -> tuple[int, int]:
    low, high = PER_OPERATION
    positive = max(low, min(high, round(CASES / (operations * (1 + NEGATIVE_SHARE)))))
    return positive, max(low, round(positive * NEGATIVE_SHARE))


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the budget stays bounded
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )


# ~2 minutes on a loaded 2-core machine, beyond the suite's 120 s default: a timeout raised
# inside Hypothesis's run shows as a flaky data generation, not as a timeout
@pytest.mark.timeout(900)
def test_every_operation_holds_to_the_document(op: Any) -> None:
    url = f"{op.url}/api/v2/openapi.json"
    document = requests.get(url, timeout=30).json()
    scopes = list(
        document["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["scopes"]
    )
    mgmt = Mgmt(op, grant(op, scopes), scopes, [])
    headers = {"Authorization": f"Bearer {mgmt.token(' '.join(scopes))}"}
    schema = schemathesis.openapi.from_url(url, timeout=30)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "the document lists no operation"
    positive, negative = _budget(len(operations))
    base_url = f"{op.url}/api/v2"
    session = requests.Session()
    failures: list[str] = []
    sent = {"cases": 0}
    started = time.monotonic()
    for operation in operations:
        for mode, examples in ((GenerationMode.POSITIVE, positive),
                               (GenerationMode.NEGATIVE, negative)):  # fmt: skip

            @_settings(examples)
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                sent["cases"] += 1
                response = case.call(base_url=base_url, session=session, headers=headers,
                                     timeout=30)  # fmt: skip
                case.validate_response(response, checks=CHECKS, headers=headers)

            try:
                run()
            except Unsatisfiable:  # nothing to negate (a path of free strings, no parameter)
                continue
            except (AssertionError, BaseExceptionGroup) as exc:  # every operation runs
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:3000]}")
    elapsed = time.monotonic() - started
    print(f"schemathesis: {len(operations)} operations, {sent['cases']} cases, {elapsed:.1f} s")
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("operations", [1, 10, 40, 80, 200])
def test_the_budget_stays_bounded(operations: int) -> None:
    positive, negative = _budget(operations)
    low, high = PER_OPERATION
    assert low <= negative <= positive <= high
    assert operations * (positive + negative) <= max(CASES, operations * 2 * low) * 1.1
