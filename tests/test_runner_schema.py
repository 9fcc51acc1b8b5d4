"""Property-based tests of the API against its own OpenAPI document: malformed input never yields a 500.

Schemathesis generates requests from /openapi.json (valid and invalid), for a platform admin, who
reaches every code path, and for a tenant operator. Hypothesis runs per operation inside one test,
so a failure names the operation and the reproducing request.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

pytestmark = [pytest.mark.netbox, pytest.mark.slow]
EXAMPLES = 30


@pytest.mark.parametrize("who", ["admin", "acme-operator"])
def test_no_input_yields_a_server_error(runner_app, tokens, who):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", runner_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(headers=tokens[who], checks=[not_a_server_error])

        check()
