"""What a posting must read back: every kind of write names the raw tables it lands in."""

from __future__ import annotations

import pytest

from ps_pipelines.lib.contracts import CONTRACTS_BY_KEY
from ps_pipelines.lib.writeback.readback import WRITTEN_ENTITIES, entities_to_read_back
from ps_pipelines.lib.writeback.senders import SENDERS


def test_every_sender_names_the_raw_tables_its_writes_land_in() -> None:
    assert set(SENDERS) == set(WRITTEN_ENTITIES)
    for entities in WRITTEN_ENTITIES.values():
        assert entities and all(key in CONTRACTS_BY_KEY for key in entities)


def test_entities_to_read_back_covers_each_kind_of_write_once() -> None:
    assert entities_to_read_back(["netsuite:invoice", "netsuite:job", "netsuite:invoice"]) == [
        "netsuite__invoice_lines", "netsuite__invoices", "netsuite__projects"]
    assert entities_to_read_back([]) == []


def test_an_unknown_kind_of_write_is_an_error_not_a_silent_gap() -> None:
    with pytest.raises(ValueError, match="dynamics:opportunity"):
        entities_to_read_back(["dynamics:opportunity"])
