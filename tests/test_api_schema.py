"""Schemathesis against the running app's /openapi.json: generated requests never produce a 500.

Uses schemathesis' Python API (operation strategies driven by Hypothesis) rather than its pytest plugin.
Both positive and negative (schema-violating) data are generated; a bounded number of examples per operation.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode

from telemetry.api.testing import ENGINEER_TOKEN, RunningApi, running_api

MAX_EXAMPLES = 30


def test_generated_requests_never_get_a_server_error() -> None:
    with running_api() as running:
        schema = schemathesis.openapi.from_url(f"{running.base_url}/openapi.json")
        results = list(schema.get_all_operations())
        operations = [r.ok() for r in results if isinstance(r, Ok)]
        assert len(operations) == len(results), "the OpenAPI document has invalid operations"
        assert len(operations) >= 10
        calls: list[str] = []
        for operation in operations:
            strategy = st.one_of(
                operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
            )

            @given(case=strategy)
            @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def check(case: schemathesis.Case) -> None:
                calls.append(case.method)
                case.call_and_validate(
                    base_url=running.base_url,
                    headers=RunningApi.bearer(ENGINEER_TOKEN),
                    checks=[not_a_server_error],
                )

            check()
        assert len(calls) >= 5 * len(operations)  # the examples really ran
