"""Contract tests: a public NetSuite client drives the sandbox the way it drives a real account.

The client is PyPI ``netsuite`` (jacobsvante/netsuite: async, httpx + authlib OAuth 1.0a), pinned
in the dev extras. It was written against real accounts, not against this sandbox, so what it
sends (TBA headers with ``realm``, HMAC-SHA256 signatures, ``Prefer: transient`` SuiteQL with
``limit``/``offset``, ``eid:`` record paths) is what NetSuite accepts. Only its host is redirected:
it builds ``https://<account>.suitetalk.api.netsuite.com/services/rest...`` and we point that at
the sandbox's address; the signature covers that address, as it covers the real host.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netsuite import Config, TokenAuth
from netsuite.exceptions import NetsuiteAPIRequestError
from netsuite.rest_api import NetSuiteRestApi

from ps_sandbox.context import DEFAULT_CREDENTIALS
from ps_sandbox.platforms import netsuite
from tests.ps_sandbox.test_netsuite_api import _seed
from tests.ps_sandbox.test_workday_api import Served, serve

TBA = DEFAULT_CREDENTIALS["netsuite_tba"]


class SandboxRestApi(NetSuiteRestApi):
    """The public client, its host pointed at the sandbox (nothing else changed)."""

    def __init__(self, config: Config, base_url: str) -> None:
        super().__init__(config, default_timeout=30, concurrent_requests=2)
        self._base_url = base_url

    def _make_url(self, subpath: str) -> str:
        return f"{self._base_url}/services/rest{subpath}"


def _api(served: Served, **auth_changes: str) -> SandboxRestApi:
    auth = TokenAuth(consumer_key=TBA["consumer_key"], consumer_secret=TBA["consumer_secret"],
                     token_id=TBA["token_id"], token_secret=TBA["token_secret"])
    auth = auth.model_copy(update=auth_changes)
    return SandboxRestApi(Config(account=TBA["account_id"], auth=auth), served.url)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serve(tmp_path, netsuite.register, _seed) as running:
        yield running


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_public_client_authenticates_with_tba(served: Served) -> None:
    """NetSuite help, "The Signature for Web Services and RESTlets" (section_1534941088) and "The
    Authorization Headers" (section_1534941295): OAuth 1.0a with realm = account id, HMAC-SHA256."""
    record = run(_api(served).get("/record/v1/customer/91"))
    assert record["id"] == "91" and record["companyName"] == "Customer 1"
    with pytest.raises(NetsuiteAPIRequestError) as caught:
        run(_api(served, token_secret="not-the-token-secret").get("/record/v1/customer/91"))
    assert caught.value.status_code == 401 and "INVALID_LOGIN" in caught.value.response_text


def test_public_client_runs_suiteql_with_paging(served: Served) -> None:
    """NetSuite help, "Executing SuiteQL Queries Through REST Web Services": POST
    /services/rest/query/v1/suiteql with Prefer: transient, limit and offset, answering items,
    hasMore, totalResults; dates in the account's date format unless TO_CHAR'd."""
    api = _api(served)
    first = run(api.suiteql("SELECT id, datecreated FROM customer ORDER BY id", limit=10, offset=0))
    assert (first["count"], first["hasMore"], first["totalResults"]) == (10, True, 25)
    assert first["items"][0]["datecreated"] == "10/1/2025"
    last = run(api.suiteql("SELECT id FROM customer ORDER BY id", limit=10, offset=20))
    assert (last["count"], last["hasMore"]) == (5, False)
    iso = run(api.suiteql("SELECT TO_CHAR(datecreated, 'YYYY-MM-DD') AS created FROM customer WHERE id = 91"))
    assert iso["items"][0]["created"] == "2025-10-01"


def test_public_client_reads_and_upserts_by_external_id(served: Served) -> None:
    """NetSuite help, "Using External IDs" in REST web services: GET and PUT
    /record/v1/{type}/eid:{externalId}; PUT is an upsert (204, Location of the record)."""
    api = _api(served)
    found = run(api.get("/record/v1/customer/eid:001EXT0001"))
    assert found["id"] == "91"
    body = {"companyName": "Public Client Ltd", "subsidiary": {"id": "1"}, "currency": {"id": "1"}}
    assert run(api.put("/record/v1/customer/eid:PUBLIC-1", json=body)) is None  # 204 No Content
    created = run(api.get("/record/v1/customer/eid:PUBLIC-1"))
    assert created["companyName"] == "Public Client Ltd" and created["externalId"] == "PUBLIC-1"
    run(api.put("/record/v1/customer/eid:PUBLIC-1", json={**body, "companyName": "Public Client Group"}))
    again = run(api.get("/record/v1/customer/eid:PUBLIC-1"))
    assert (again["id"], again["companyName"]) == (created["id"], "Public Client Group")
