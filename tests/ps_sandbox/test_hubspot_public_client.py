"""Contract tests: the emulated HubSpot portal driven by HubSpot's own Python client
(hubspot-api-client 12), whose models are generated from HubSpot's OpenAPI specifications. If an
answer drifted from the documented shape, the client's deserialization would refuse it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.companies import BatchInputSimplePublicObjectBatchInputUpsert, SimplePublicObjectBatchInputUpsert
from hubspot.crm.deals import ApiException, Filter, FilterGroup, PublicObjectSearchRequest

from ps_sandbox.app import open_sandbox, start_server
from ps_sandbox.context import DEFAULT_CREDENTIALS, SandboxConfig
from ps_sandbox.platforms import hubspot as emulator

TOKEN = DEFAULT_CREDENTIALS["hubspot"]["token"]


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubSpot, object]]:
    ctx = open_sandbox(tmp_path_factory.mktemp("hsc") / "sandbox.sqlite", SandboxConfig(scale=0.5))
    ctx.store.kv_set(emulator.SEARCH_KEY, 0)  # the client does not pace itself
    server = start_server(ctx)
    try:
        yield HubSpot(access_token=TOKEN, host=f"http://127.0.0.1:{server.server_port}"), ctx
    finally:
        server.shutdown()
        server.server_close()


def test_get_page_follows_the_after_cursor(portal) -> None:
    client, ctx = portal
    ids, after = [], None
    while True:
        page = client.crm.deals.basic_api.get_page(limit=9, after=after, properties=["dealname", "dealstage"])
        ids += [deal.id for deal in page.results]
        assert all(set(deal.properties) >= {"dealname", "dealstage", "hs_object_id"} for deal in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert len(ids) == len(set(ids)) == ctx.store.count("hubspot", "deals")


def test_do_search_filters_on_the_change_time_and_sorts(portal) -> None:
    client, _ = portal
    request = PublicObjectSearchRequest(
        filter_groups=[FilterGroup(filters=[Filter(property_name="hs_lastmodifieddate", operator="GTE",
                                                   value="2026-01-01T00:00:00Z")])],
        sorts=["hs_lastmodifieddate"], properties=["hs_lastmodifieddate", "dealstage"], limit=200)
    answer = client.crm.deals.search_api.do_search(public_object_search_request=request)
    changes = [deal.properties["hs_lastmodifieddate"] for deal in answer.results]
    assert answer.total == len(answer.results) > 0
    assert changes == sorted(changes) and min(changes) >= "2026-01-01"


def test_batch_upsert_by_id_property_twice_creates_once(portal) -> None:
    client, _ = portal
    inputs = [SimplePublicObjectBatchInputUpsert(id_property="ps_external_id", id=f"acct-{n}",
                                                 properties={"name": f"Client {n}"}) for n in range(2)]
    batch = BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs)
    first = client.crm.companies.batch_api.upsert(batch_input_simple_public_object_batch_input_upsert=batch)
    second = client.crm.companies.batch_api.upsert(batch_input_simple_public_object_batch_input_upsert=batch)
    assert [r.new for r in first.results] == [True, True] and [r.new for r in second.results] == [False, False]
    assert sorted(r.id for r in first.results) == sorted(r.id for r in second.results)


def test_associations_owners_and_pipelines_deserialize(portal) -> None:
    client, ctx = portal
    deal_id = ctx.store.scan("hubspot", "deals", order="id", limit=1)[0]["id"]
    linked = client.crm.associations.v4.basic_api.get_page("deals", deal_id, "companies")
    assert linked.results[0].association_types[0].category == "HUBSPOT_DEFINED"
    assert client.crm.owners.owners_api.get_page().results[0].email
    stages = {p.id: p for p in client.crm.pipelines.pipelines_api.get_all("deals").results}["default"].stages
    assert "closedwon" in {stage.id for stage in stages}


def test_association_batch_read_deserializes(portal) -> None:
    client, ctx = portal
    deal_ids = [row["id"] for row in ctx.store.scan("hubspot", "deals", order="id", limit=3)]
    request = BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[PublicFetchAssociationsBatchRequest(id=deal_id) for deal_id in deal_ids])
    answer = client.crm.associations.v4.batch_api.get_page("deals", "companies", request)
    assert sorted(result._from.id for result in answer.results) == sorted(deal_ids)
    assert all({5, 341} == {kind.type_id for kind in result.to[0].association_types} for result in answer.results)


def test_a_wrong_token_raises_the_clients_401(portal) -> None:
    client, _ = portal
    wrong = HubSpot(access_token="pat-na1-wrong", host=client.config["host"])
    with pytest.raises(ApiException) as raised:
        wrong.crm.deals.basic_api.get_page()
    assert raised.value.status == 401

