"""Contract test: Certinia's pse__ objects in the emulated org, driven by a real public client,
simple-salesforce, exactly as it drives the org's standard objects (one Salesforce emulation)."""

from __future__ import annotations

import requests
from simple_salesforce import Salesforce, SalesforceMalformedRequest

from tests.conftest import RunningSandbox
from tests.ps_sandbox.test_salesforce_api import CREDENTIALS
from tests.ps_sandbox.test_salesforce_public_client import DOMAIN, LoopbackTransport


def _connected(sandbox: RunningSandbox) -> Salesforce:
    session = requests.Session()
    session.mount("https://", LoopbackTransport(sandbox.url))
    return Salesforce(domain=DOMAIN, consumer_key=CREDENTIALS["client_id"],
                      consumer_secret=CREDENTIALS["client_secret"], session=session)


def test_query_all_of_timecards_with_their_project(certinia_sandbox: RunningSandbox) -> None:
    """query_all follows nextRecordsUrl ("Query"); parent fields come nested under the
    relationship name (``pse__Project__r``), with their own ``attributes``."""
    sf = _connected(certinia_sandbox)
    result = sf.query_all("SELECT Id, pse__Project__r.Name, pse__Project__r.pse__Account__c, pse__Total_Hours__c "
                          "FROM pse__Timecard_Header__c", headers={"Sforce-Query-Options": "batchSize=200"})
    store = certinia_sandbox.ctx.store
    assert result["totalSize"] == len(result["records"]) == store.count("salesforce", "pse__Timecard_Header__c")
    first = result["records"][0]
    assert first["attributes"]["type"] == "pse__Timecard_Header__c"
    assert first["pse__Project__r"]["attributes"]["type"] == "pse__Proj__c"
    project_names = {p["Name"] for p in store.scan("salesforce", "pse__Proj__c")}
    assert {r["pse__Project__r"]["Name"] for r in result["records"]} <= project_names


def test_describe_update_and_errors_on_a_package_object(certinia_sandbox: RunningSandbox) -> None:
    sf = _connected(certinia_sandbox)
    milestone = sf.pse__Milestone__c
    described = milestone.describe()
    assert described["name"] == "pse__Milestone__c" and described["custom"] is True
    record = sf.query("SELECT Id, pse__Status__c FROM pse__Milestone__c WHERE pse__Status__c != 'Approved' "
                      "LIMIT 1")["records"][0]
    assert milestone.update(record["Id"], {"pse__Description__c": "Client sign-off pending"}) == 204
    assert milestone.get(record["Id"])["pse__Description__c"] == "Client sign-off pending"
    resources = sf.query("SELECT COUNT() FROM Contact WHERE pse__Is_Resource__c = true")
    assert resources["totalSize"] == certinia_sandbox.ctx.store.count("workday", "workers")
    try:
        sf.query("SELECT pse__Nonexistent__c FROM pse__Proj__c")
    except SalesforceMalformedRequest as refused:
        assert refused.content[0]["errorCode"] == "INVALID_FIELD"
    else:
        raise AssertionError("an unknown package field must be refused")
