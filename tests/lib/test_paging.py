"""Paging helpers, driven by fake fetch functions (and one scripted cursor API)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ps_pipelines.lib.http import (
    ApiClient,
    StaticBearer,
    change_keyset_pages,
    offset_pages,
    page_number_pages,
)
from ps_pipelines.lib.http.paging import follow_next_url
from ps_sandbox.http import Request, Response, Router, SandboxHTTPServer, json_response


def flatten(pages: Iterator[list[dict[str, Any]]]) -> list[Any]:
    return [record["id"] for page in pages for record in page]


# -- offset / page number ------------------------------------------------------------------------
ROWS = [{"id": i} for i in range(23)]


def test_offset_pages_until_total() -> None:
    calls: list[tuple[int, int]] = []

    def fetch(offset: int, limit: int) -> tuple[list[dict], int]:
        calls.append((offset, limit))
        return ROWS[offset : offset + limit], len(ROWS)

    pages = list(offset_pages(fetch, 10))
    assert [len(p) for p in pages] == [10, 10, 3]
    assert calls == [(0, 10), (10, 10), (20, 10)]


def test_offset_pages_until_has_more_is_false() -> None:
    def fetch(offset: int, limit: int) -> tuple[list[dict], bool]:
        page = ROWS[offset : offset + limit]
        return page, offset + len(page) < len(ROWS)

    assert flatten(offset_pages(fetch, 5)) == list(range(23))


def test_offset_pages_follows_a_server_that_caps_the_limit() -> None:
    # Asked for 10, the server answers at most 4: the offset must advance by what arrived.
    def fetch(offset: int, limit: int) -> tuple[list[dict], int]:
        return ROWS[offset : offset + min(limit, 4)], len(ROWS)

    assert flatten(offset_pages(fetch, 10)) == list(range(23))


def test_offset_pages_stops_on_an_empty_page() -> None:
    assert list(offset_pages(lambda offset, limit: ([], True), 10)) == []


def test_page_number_pages() -> None:
    calls: list[int] = []

    def fetch(page: int) -> tuple[list[dict], int]:
        calls.append(page)
        return ROWS[(page - 1) * 10 : page * 10], 3

    assert flatten(page_number_pages(fetch)) == list(range(23))
    assert calls == [1, 2, 3]


# -- change keyset ---------------------------------------------------------------------------------
class LiveTable:
    """An API ordered by (updated, id), served by page number, that can change between calls."""

    def __init__(self, rows: dict[str, int], page_size: int) -> None:
        self.rows = dict(rows)  # id -> updated
        self.page_size = page_size
        self.calls: list[tuple[Any, int]] = []
        self.on_call: dict[int, Any] = {}

    def fetch(self, since: int | None, page: int) -> list[dict]:
        self.calls.append((since, page))
        if len(self.calls) in self.on_call:
            self.on_call[len(self.calls)](self)
        ordered = sorted(
            ({"id": i, "updated": u} for i, u in self.rows.items() if since is None or u >= since),
            key=lambda r: (r["updated"], r["id"]),
        )
        start = (page - 1) * self.page_size
        return ordered[start : start + self.page_size]

    def pages(self, since: int | None = None) -> Iterator[list[dict]]:
        return change_keyset_pages(self.fetch, lambda r: r["updated"], lambda r: r["id"], since, self.page_size)


def naive_page_walk(table: LiveTable) -> list[str]:
    """What walking page numbers does: the baseline the keyset helper must beat."""
    seen, page = [], 1
    while True:
        records = table.fetch(None, page)
        seen += [r["id"] for r in records]
        if len(records) < table.page_size:
            return seen
        page += 1


def ten_rows() -> dict[str, int]:
    return {f"r{i:02d}": i for i in range(10)}


def test_keyset_reads_a_static_table_once_each() -> None:
    table = LiveTable(ten_rows(), page_size=3)
    assert flatten(table.pages()) == [f"r{i:02d}" for i in range(10)]
    # Each full page restarts from the last change time seen, always at page 1.
    assert table.calls == [(None, 1), (2, 1), (4, 1), (6, 1), (8, 1)]


def test_keyset_honours_since() -> None:
    table = LiveTable(ten_rows(), page_size=4)
    assert flatten(table.pages(since=6)) == ["r06", "r07", "r08", "r09"]


def shift_rows(table: LiveTable) -> None:
    # Mid-listing, a row already read (r01) and one not yet read (r04) are updated: both
    # move to the end, and the rows behind r01 shift one place towards the front, so r03
    # slides from page 2 onto page 1, which was already read.
    table.rows["r04"] = 100
    table.rows["r01"] = 101


def test_naive_page_walk_misses_a_shifted_row() -> None:
    table = LiveTable(ten_rows(), page_size=3)
    table.on_call[2] = shift_rows
    assert "r03" not in naive_page_walk(table)  # the failure the keyset helper exists to prevent


def test_keyset_survives_rows_updated_mid_listing() -> None:
    table = LiveTable(ten_rows(), page_size=3)
    table.on_call[2] = shift_rows
    ids = flatten(table.pages())
    assert set(ids) == set(ten_rows())  # nothing missed
    # Updated rows come again with their new change time (the newest values win downstream).
    assert ids.count("r01") == 2 and ids.count("r04") == 1
    assert len(ids) == 11


def test_keyset_steps_through_a_block_sharing_one_change_time() -> None:
    # Seven rows share change time 5: no keyset can step past them, so page numbers are used.
    rows = {"a": 1, **{f"t{i}": 5 for i in range(7)}, "z": 9}
    table = LiveTable(rows, page_size=3)
    assert flatten(table.pages()) == ["a", "t0", "t1", "t2", "t3", "t4", "t5", "t6", "z"]
    assert table.calls == [(None, 1), (5, 1), (5, 2), (5, 3)]


def test_keyset_dedupes_rows_at_the_restart_time() -> None:
    rows = {"a": 1, "b": 2, "c": 2, "d": 2, "e": 3}
    table = LiveTable(rows, page_size=3)  # page 1 ends inside the block at time 2
    assert flatten(table.pages()) == ["a", "b", "c", "d", "e"]


def test_keyset_empty_source() -> None:
    assert list(LiveTable({}, page_size=3).pages()) == []


# -- follow next URL -------------------------------------------------------------------------------
@pytest.fixture
def cursor_api() -> Iterator[tuple[str, list[Request]]]:
    router = Router()
    firsts: list[Request] = []
    batches = {"1": (["a", "b"], "/query/01g-2"), "2": (["c", "d"], "/query/01g-4"), "4": (["e"], None)}

    def page(request: Request) -> Response:
        records, next_url = batches[request.params["cursor"].rsplit("-", 1)[-1]]
        body: dict[str, Any] = {"done": next_url is None, "records": [{"id": r} for r in records]}
        if next_url:
            body["nextRecordsUrl"] = next_url
        return json_response(body)

    def first(request: Request) -> Response:
        firsts.append(request)
        return page(Request("GET", "", {}, {}, b"", params={"cursor": "01g-1"}))

    router.add("GET", "/query", "test", first)
    router.add("GET", "/query/{cursor}", "test", page)
    server = SandboxHTTPServer(("127.0.0.1", 0), router)
    server.serve_in_thread()
    yield f"http://127.0.0.1:{server.server_port}", firsts
    server.shutdown()
    server.server_close()


def test_follow_next_url(cursor_api: tuple[str, list[Request]]) -> None:
    url, firsts = cursor_api
    # The client's base URL is elsewhere: relative next URLs follow the first URL's host.
    client = ApiClient("salesforce", "http://login.invalid", StaticBearer("t"))
    pages = list(
        follow_next_url(
            client,
            f"{url}/query",
            {"q": "SELECT Id FROM Account"},
            "records",
            "nextRecordsUrl",
            headers={"Sforce-Query-Options": "batchSize=2"},
        )
    )
    assert [[r["id"] for r in p] for p in pages] == [["a", "b"], ["c", "d"], ["e"]]
    assert client.stats()["requests"] == 3
    assert [(r.query, r.header("sforce-query-options")) for r in firsts] == [
        ({"q": "SELECT Id FROM Account"}, "batchSize=2")
    ]
