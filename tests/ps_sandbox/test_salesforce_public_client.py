"""Contract tests: the emulated Salesforce org driven by a real public client, simple-salesforce,
the way it drives a tenant. Nothing here is ours but the emulator: if the emulator drifted into
mirroring our own connector, a client written against Salesforce's documentation would notice.

simple-salesforce always speaks HTTPS to ``<domain>.salesforce.com`` (the login host) and to the
``instance_url`` the token endpoint names. ``LoopbackTransport`` plays DNS and TLS termination:
it sends every HTTPS request to the emulator over plain HTTP on localhost, keeping the Host
header, so the emulator answers with the tenant's own host name as its ``instance_url``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import (
    Salesforce,
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from ps_sandbox.platforms import salesforce
from tests.ps_sandbox.test_salesforce_api import ACCOUNTS, CREDENTIALS, Served, _account_id, _seed
from tests.ps_sandbox.test_workday_api import serve

DOMAIN = "psfirm.my"  # the org's My Domain: https://psfirm.my.salesforce.com
HOST = f"{DOMAIN}.salesforce.com"


class LoopbackTransport(HTTPAdapter):
    """Delivers ``https://<any host>/...`` to the emulator at ``http://127.0.0.1:<port>/...``."""

    def __init__(self, emulator_url: str) -> None:
        super().__init__(max_retries=0)
        self.netloc = urlsplit(emulator_url).netloc

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        request.headers["Host"] = parts.netloc
        request.url = urlunsplit(("http", self.netloc, parts.path, parts.query, parts.fragment))
        return super().send(request, **kwargs)


def _session(served: Served) -> requests.Session:
    session = requests.Session()
    session.mount("https://", LoopbackTransport(served.url))
    return session


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Served]:
    with serve(tmp_path, salesforce.register, _seed) as served:
        yield served


def _connected(org: Served) -> Salesforce:
    """simple-salesforce's OAuth 2.0 client credentials login (consumer key and secret, sent as
    HTTP Basic to ``https://<domain>.salesforce.com/services/oauth2/token``)."""
    return Salesforce(domain=DOMAIN, consumer_key=CREDENTIALS["client_id"],
                      consumer_secret=CREDENTIALS["client_secret"], session=_session(org))


def test_client_credentials_login_then_query(org: Served) -> None:
    """Salesforce Help, "OAuth 2.0 Client Credentials Flow for Server-to-Server Integration":
    the token answer names the org's instance_url, where the REST API (REST API Developer Guide,
    "Query") is then called with the access token as a bearer."""
    sf = _connected(org)
    assert sf.sf_instance == HOST  # the instance_url the emulator answered, scheme stripped
    result = sf.query("SELECT Id, Name FROM Account WHERE Name = 'Acme 007'")
    assert result["totalSize"] == 1 and result["done"] is True
    record = result["records"][0]
    assert record["Name"] == "Acme 007"
    assert record["attributes"]["type"] == "Account"
    assert sf.api_usage["api-usage"].used >= 1  # parsed from Sforce-Limit-Info ("Sforce-Limit-Info" header)


def test_wrong_consumer_secret_is_refused_at_login(org: Served) -> None:
    """Salesforce Help, "OAuth 2.0 Client Credentials Flow": a client whose credentials do not
    match gets the token endpoint's ``invalid_client`` error, which simple-salesforce raises
    as SalesforceAuthenticationFailed with Salesforce's code and description."""
    with pytest.raises(SalesforceAuthenticationFailed) as refused:
        Salesforce(domain=DOMAIN, consumer_key=CREDENTIALS["client_id"], consumer_secret="wrong",
                   session=_session(org))
    assert refused.value.code == "invalid_client"
    assert refused.value.auth_message == "invalid client credentials"


def test_direct_session_and_query_all_follow_next_records_url(org: Served) -> None:
    """REST API Developer Guide, "Query" and "Execute a SOQL Query": results larger than a batch
    come in pages, each naming the next in ``nextRecordsUrl`` until ``done``; the batch size is
    asked for with the ``Sforce-Query-Options`` header ("Query Options Header")."""
    token = _connected(org).session_id
    sf = Salesforce(instance_url=f"https://{HOST}", session_id=token, session=_session(org))
    first = sf.query("SELECT Id FROM Account ORDER BY Id", headers={"Sforce-Query-Options": "batchSize=200"})
    assert len(first["records"]) == 200 and first["done"] is False
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/")
    everything = sf.query_all("SELECT Id FROM Account ORDER BY Id",
                              headers={"Sforce-Query-Options": "batchSize=200"})
    assert [r["Id"] for r in everything["records"]] == [_account_id(i) for i in range(1, ACCOUNTS + 1)]
    with_bin = sf.query_all("SELECT Id, IsDeleted FROM Account", include_deleted=True)  # queryAll
    assert with_bin["totalSize"] == ACCOUNTS + 1


def test_describe_of_an_object_and_of_the_org(org: Served) -> None:
    """REST API Developer Guide, "sObject Describe" and "Describe Global"."""
    sf = _connected(org)
    account = sf.Account.describe()
    fields = {f["name"]: f for f in account["fields"]}
    assert account["name"] == "Account" and account["keyPrefix"] == "001"
    assert fields["Name"]["type"] == "string" and fields["Name"]["nillable"] is False
    assert fields["OwnerId"]["referenceTo"] == ["User"]
    assert fields["ERP_Customer_Id__c"]["custom"] is True and fields["ERP_Customer_Id__c"]["externalId"] is True
    assert {"Account", "Contact", "Opportunity", "Contract"} <= {o["name"] for o in sf.describe()["sobjects"]}


def test_update_upsert_and_delete_records(org: Served) -> None:
    """REST API Developer Guide, "sObject Rows" (PATCH updates and answers 204, DELETE answers
    204), "sObject Rows by External ID" (upsert: 201 with the new id when created, 204 when it
    updated), and "QueryAll" (a deleted record stays readable with IsDeleted = true)."""
    sf = _connected(org)
    assert sf.Opportunity.update("006TS0000000002AAA", {"StageName": "Negotiation/Review"}) == 204
    assert sf.Opportunity.get("006TS0000000002AAA")["StageName"] == "Negotiation/Review"
    created = sf.Opportunity.upsert("ERP_Project_Id__c/PRJ-42", {"Name": "New deal", "StageName": "Prospecting",
                                                                 "CloseDate": "2026-12-31"})
    assert created == 201
    assert sf.Opportunity.get_by_custom_id("ERP_Project_Id__c", "PRJ-42")["Name"] == "New deal"
    assert sf.Opportunity.upsert("ERP_Project_Id__c/PRJ-42", {"Amount": 5000}) == 204

    assert sf.Account.delete(_account_id(5)) == 204
    rows = sf.query_all(f"SELECT Id, IsDeleted FROM Account WHERE Id = '{_account_id(5)}'", include_deleted=True)
    assert rows["records"][0]["IsDeleted"] is True
    now = org.ctx.store.now()
    log = sf.Account.deleted(now - timedelta(days=1), now + timedelta(minutes=5))  # "sObject Get Deleted"
    assert _account_id(5) in [entry["id"] for entry in log["deletedRecords"]]


def test_contact_delete(org: Served) -> None:
    """REST API Developer Guide, "sObject Rows": DELETE of a record answers 204 No Content; a
    record already in the recycle bin answers 404 ENTITY_IS_DELETED."""
    contact = {"Id": "003TS0000000002AAA", "AccountId": _account_id(1), "FirstName": "Ada", "LastName": "Here",
               "IsDeleted": False, "SystemModstamp": "2025-10-01T09:00:00.000+0000"}
    org.ctx.store.put("salesforce", "Contact", contact["Id"], contact, org.ctx.store.now())
    sf = _connected(org)
    assert sf.Contact.delete(contact["Id"]) == 204
    with pytest.raises(SalesforceResourceNotFound) as gone:
        sf.Contact.delete(contact["Id"])
    assert gone.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"


def test_limits(org: Served) -> None:
    """REST API Developer Guide, "Limits": DailyApiRequests with Max and Remaining."""
    org.ctx.store.kv_set("salesforce_daily_api_limit", 1000)
    sf = _connected(org)
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] == 1000
    assert limits["DailyApiRequests"]["Remaining"] == 1000 - sf.api_usage["api-usage"].used


def test_errors_map_to_simple_salesforces_exceptions(org: Served) -> None:
    """REST API Developer Guide, "Status Codes and Error Responses": 401 INVALID_SESSION_ID for
    an expired session, 404 NOT_FOUND for a missing resource, 400 for a malformed query and 403
    REQUEST_LIMIT_EXCEEDED for an exhausted allocation; simple-salesforce maps them by status
    to SalesforceExpiredSession, SalesforceResourceNotFound, SalesforceMalformedRequest and
    SalesforceRefusedRequest, each carrying Salesforce's error body."""
    connected = _connected(org)
    direct = Salesforce(instance_url=f"https://{HOST}", session_id=connected.session_id, session=_session(org))
    org.ctx.tokens.expire_all("salesforce")
    with pytest.raises(SalesforceExpiredSession) as expired:
        direct.query("SELECT Id FROM Account LIMIT 1")
    assert expired.value.content[0]["errorCode"] == "INVALID_SESSION_ID"
    # With a login it can repeat, simple-salesforce logs in again on INVALID_SESSION_ID and goes on.
    assert connected.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1

    with pytest.raises(SalesforceResourceNotFound) as missing:
        connected.Account.get(_account_id(9999))
    assert missing.value.content == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND", "fields": []}]
    with pytest.raises(SalesforceResourceNotFound):
        connected.restful("no/such/resource")
    with pytest.raises(SalesforceMalformedRequest) as malformed:
        connected.query("SELECT Id, Bogus__c FROM Account")
    assert malformed.value.content[0]["errorCode"] == "INVALID_FIELD"

    org.ctx.store.kv_set("salesforce_daily_api_limit", 0)
    with pytest.raises(SalesforceRefusedRequest) as refused:
        connected.query("SELECT Id FROM Account LIMIT 1")
    assert refused.value.status == 403
    assert refused.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
