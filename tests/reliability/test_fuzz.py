"""Schema fuzzing: schemathesis drives every operation of the OpenAPI schema in-process.

Each operation gets a bounded, derandomized set of generated requests (valid and invalid
ones), sent with and without the admin token, to the ASGI app of a server that serves a
tiny posterior. No response may be a 5xx and every response must conform to the schema:
declared status code, declared content type, valid body.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from app.main import create_app
from app.settings import Settings
from tests.helpers.app_helpers import app_settings, publish, tiny_data
from tests.helpers.figures import record

TOKEN = "fuzz-token-5f2c"
EXAMPLES_PER_OPERATION = 25
MAX_BODY_BYTES = Settings.model_fields["max_body_bytes"].default


class Delegate:
    """An ASGI app forwarding to `target`: the schema needs its app at import time (checks
    re-send requests through it), the app needs a store that a fixture makes."""

    target: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.target is not None, "use the fuzzed_app fixture"
        await self.target(scope, receive, send)


# The schema does not depend on the store.
schema = schemathesis.openapi.from_dict(create_app(Settings(store_dir="unused")).openapi())
schema.app = Delegate()
_sent: dict[str, int] = {}


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory):
    """The app serving a tiny posterior; schemathesis runs its lifespan on first use."""
    store = tmp_path_factory.mktemp("fuzz") / "store"
    publish(store, tiny_data(num_users=20, num_movies=16), seed=1)
    settings_ = app_settings(
        store, poll_interval_s=0, api_token=TOKEN, run_jobs=False, data_dir=store.parent / "data"
    )
    schema.app.target = create_app(settings_)  # jobs are queued, never run
    yield
    asgi.shutdown_lifespans()  # stop the holder (releases its pin) while the store exists
    record("fuzz", requests=sum(_sent.values()), operations=len(_sent))


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,  # a fixed seed: the same requests on every run
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def check(case, headers: dict[str, str]) -> None:
    # A schema-valid `data` path for POST /jobs is refused (422) when no such file exists in
    # the data root: only there is a 422 for well-formed input the right answer.
    excluded = [positive_data_acceptance] if case.operation.label == "POST /jobs" else []
    response = case.call(headers=headers)
    if response.status_code == 413:  # a body over SHARDLENS_MAX_BODY_BYTES: refused unread
        assert len(response.request.body or b"") > MAX_BODY_BYTES
        excluded.append(negative_data_rejection)
    if response.status_code == 422 and all(
        problem["type"] == "unknown_movie" for problem in response.json()["detail"]
    ):  # well-formed movie ids the served version does not have: a 422 naming them
        excluded.append(positive_data_acceptance)
    case.validate_response(response, headers=headers, excluded_checks=excluded)
    assert response.status_code < 500, response.content[:500]
    sent = unquote(str(response.request.url)).encode() + (response.request.body or b"")
    if TOKEN.encode() not in sent:  # an echoed input is not a leak
        assert TOKEN.encode() not in response.content
    _sent[case.operation.label] = _sent.get(case.operation.label, 0) + 1


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_conforms_with_the_token(case, fuzzed_app):
    check(case, {"Authorization": f"Bearer {TOKEN}"})


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_conforms_without_a_token(case, fuzzed_app):
    check(case, {})
