"""Generated requests against the OpenAPI document (schemathesis): whatever a client sends, the API answers with
a 2xx or a clear 4xx, never a 5xx, and its answers match the documented schemas."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from serve.copies import copy_boutique
from vendome.data import store
from vendome.pipeline import train, training_data
from vendome.serve.app import create_app
from vendome.serve.service import Recommendations


@pytest.fixture(scope="module")
def api_schema(boutique_ws, tmp_path_factory):
    ws = copy_boutique(boutique_ws, tmp_path_factory.mktemp("fuzz") / "ws")
    data = training_data(ws, threads=2, progress=False)
    train(ws, "itemknn", data=data)
    svc = Recommendations(ws, "itemknn", data=data)
    # fit the composed search here: fitted inside the first generated request, it outlasted the client's 10 s read
    # timeout on a loaded machine (a CI run with two benchmarks beside it)
    svc.searcher()
    app = create_app(ws, api_key="fuzz-key", svc=svc)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    store.writer(ws).close()


def test_no_generated_request_gets_a_server_error(api_schema):
    """Every operation of the document, 25 generated requests each (schemathesis's pytest plugin is not used: its
    lazy fixture parametrisation does not run under pytest 9)."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

        check()
