"""The Dynamics 365 Finance and Operations read client against the sandbox over real HTTP: the Entra
token with its scope, paging across ``@odata.nextLink``, every company's rows, throttling and an
expired token, plus the look-up and write helpers the write-back builds on."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from ps_pipelines.lib.contracts import d365 as contracts
from ps_pipelines.lib.http import AuthError, OAuth2ClientCredentials, RetryExhaustedError, ValidationError
from ps_pipelines.lib.sources.base import SourceClient
from ps_pipelines.lib.sources.d365 import D365Client, ids_filter, key_predicate
from ps_sandbox.context import DEFAULT_CREDENTIALS
from tests.conftest import RunningSandbox

CREDS = DEFAULT_CREDENTIALS["d365"]


def _client(sandbox: RunningSandbox, sleeps: list[float] | None = None, **kw: Any) -> D365Client:
    """The sandbox is both the environment and Entra ID; waits are recorded instead of slept."""
    return D365Client(sandbox.url, CREDS["tenant"], CREDS["client_id"], CREDS["client_secret"], login_url=sandbox.url,
                      sleep=(sleeps if sleeps is not None else []).append, **kw)


def _rows(client: D365Client, contract: Any) -> list[dict[str, Any]]:
    return [row for page in client.extract(contract, since=None) for row in page]


def _stored(sandbox: RunningSandbox, entity: str) -> list[dict[str, Any]]:
    _client(sandbox).find("LegalEntities", "LegalEntityId ne ''")  # the first request derives the data
    return sandbox.ctx.store.scan("d365", entity, order="id")


def test_the_client_is_a_source_client(sandbox: RunningSandbox) -> None:
    assert isinstance(_client(sandbox), SourceClient)


def test_the_token_request_names_the_environment_as_scope(sandbox: RunningSandbox) -> None:
    """Entra ID refuses a client-credentials grant without ``scope`` (AADSTS90014 / invalid_scope)
    and answers one for ``<environment URL>/.default``."""
    token_url = f"{sandbox.url}/{CREDS['tenant']}/oauth2/v2.0/token"
    client = _client(sandbox)
    assert isinstance(client.client.auth, OAuth2ClientCredentials)
    assert client.client.auth.scope == f"{sandbox.url}/.default"
    form, _ = client.client.auth._token_request()
    assert form["scope"] == f"{sandbox.url}/.default" and form["grant_type"] == "client_credentials"
    assert _rows(client, contracts.CURRENCIES)
    assert client.client.auth.token_response["token_type"] == "Bearer"
    assert CREDS["client_secret"] not in repr(client.client.auth)

    unscoped = OAuth2ClientCredentials(token_url, CREDS["client_id"], CREDS["client_secret"])
    with pytest.raises(AuthError):
        unscoped.ensure()


def test_pages_follow_next_links_across_every_company(sandbox: RunningSandbox) -> None:
    stored = _stored(sandbox, "CustomersV3")
    size = max(1, len(stored) // 3)  # a few pages, whatever the sandbox's scale
    client = _client(sandbox, page_size=size)
    pages = list(client.extract(contracts.CUSTOMERS, since=None))
    rows = [row for page in pages for row in page]
    assert len(pages) == -(-len(stored) // size) > 2
    assert all(len(page) <= size for page in pages)
    keys = [(row["dataAreaId"], row["CustomerAccount"]) for row in rows]
    assert len(set(keys)) == len(keys) == len(stored)  # none twice, none skipped
    companies = Counter(row["dataAreaId"] for row in rows)
    assert len(companies) > 1 and companies == Counter(row["dataAreaId"] for row in stored)
    # $select: the contract's fields only, plus the row's etag.
    assert all(set(row) <= {"@odata.etag", *contracts.CUSTOMERS.source_fields} for row in rows)
    assert client.stats()["requests"] == len(pages) + 1  # the pages and one token


def test_a_429_waits_its_retry_after_then_succeeds(sandbox: RunningSandbox) -> None:
    sleeps: list[float] = []
    client = _client(sandbox, sleeps)
    expected = len(_stored(sandbox, "Currencies"))
    sandbox.control("PUT", "faults/d365", {"queue": [{"kind": "429", "retry_after": 7}]})
    assert len(_rows(client, contracts.CURRENCIES)) == expected
    assert sleeps == [7]
    stats = client.stats()
    assert (stats["throttled"], stats["retries"]) == (1, 1)


def test_an_expired_token_is_refreshed_once(sandbox: RunningSandbox) -> None:
    client = _client(sandbox)
    first = _rows(client, contracts.LEGAL_ENTITIES)
    sandbox.control("POST", "tokens/expire", {"platform": "d365"})
    assert _rows(client, contracts.LEGAL_ENTITIES) == first
    assert client.stats()["auth_refreshes"] == 1


def test_extract_by_ids_reads_those_records(sandbox: RunningSandbox) -> None:
    lines = _stored(sandbox, "SalesInvoiceLines")[:3]
    ids = [f"{r['dataAreaId']}|{r['InvoiceNumber']}|{Decimal(str(r['LineNumber']))}" for r in lines]
    assert "LineNumber eq " in ids_filter(contracts.INVOICE_LINES, ids)
    assert ids_filter(contracts.INVOICE_LINES, ["usmf|FTI-1|1000.0", "usmf|O'Neil|2.50"]) == (
        "(dataAreaId eq 'usmf' and InvoiceNumber eq 'FTI-1' and LineNumber eq 1000) or "
        "(dataAreaId eq 'usmf' and InvoiceNumber eq 'O''Neil' and LineNumber eq 2.5)")
    rows = [r for page in _client(sandbox).extract(contracts.INVOICE_LINES, since=None, ids=ids) for r in page]
    assert sorted((r["InvoiceNumber"], r["LineNumber"]) for r in rows) == \
        sorted((r["InvoiceNumber"], r["LineNumber"]) for r in lines)


def test_find_create_update(sandbox: RunningSandbox) -> None:
    client = _client(sandbox)
    other = sorted({r["dataAreaId"] for r in _stored(sandbox, "CustomersV3")} - {CREDS["default_company"]})[0]
    created = client.create("CustomersV3", {"dataAreaId": other, "CustomerAccount": "X-90001",
                                            "OrganizationName": "O'Brien & Co", "CustomerGroupId": "PSCUST"})
    assert (created["dataAreaId"], created["CustomerAccount"]) == (other, "X-90001")
    key = {"dataAreaId": other, "CustomerAccount": "X-90001"}
    assert key_predicate(key) == f"(dataAreaId='{other}',CustomerAccount='X-90001')"
    client.update("CustomersV3", key, {"OrganizationName": "O'Brien and Co"})
    found = client.find("CustomersV3", "CustomerAccount eq 'X-90001'")  # not the default company: cross-company
    assert [(r["dataAreaId"], r["OrganizationName"]) for r in found] == [(other, "O'Brien and Co")]
    assert client.find("CustomersV3", "OrganizationName eq 'O''Brien and Co'") == found


def test_refusals_name_the_servers_reason_and_a_lost_create_is_not_sent_again(sandbox: RunningSandbox) -> None:
    client = _client(sandbox)
    with pytest.raises(ValidationError, match="Nope"):
        client.find("CustomersV3", "Nope eq 'x'")
    with pytest.raises(ValidationError, match="CustomerGroupId"):
        client.create("CustomersV3", {"CustomerAccount": "X-90002", "OrganizationName": "No Group"})

    sandbox.control("PUT", "faults/d365", {"method": "POST", "queue": [{"kind": "drop", "after": True}]})
    new = {"CustomerAccount": "X-90003", "OrganizationName": "Lost Answer Ltd", "CustomerGroupId": "PSCUST"}
    with pytest.raises(RetryExhaustedError) as lost:
        client.create("CustomersV3", new)
    assert lost.value.in_doubt
    assert [r["OrganizationName"] for r in client.find("CustomersV3", "CustomerAccount eq 'X-90003'")] == \
        ["Lost Answer Ltd"]  # committed once: the write-back looks before it creates again


@pytest.mark.parametrize("contract", contracts.ALL, ids=lambda c: c.key)
def test_every_contract_extracts_completely(sandbox: RunningSandbox, contract: Any) -> None:
    expected = [contract.source_id(contract.normalize(r)) for r in _stored(sandbox, contract.source_object)]
    rows = _rows(_client(sandbox, page_size=max(1, len(expected) // 2)), contract)
    assert expected and sorted(contract.source_id(contract.normalize(r)) for r in rows) == sorted(expected)
