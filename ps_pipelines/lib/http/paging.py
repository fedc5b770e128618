"""Paging helpers: each turns one API's paging style into a generator of pages (lists of records).

The helpers know nothing about platforms; source clients supply a ``fetch`` callable that
performs one request and unpacks it. Empty pages are never yielded.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

if TYPE_CHECKING:
    from ps_pipelines.lib.http.client import ApiClient

Page = list[dict[str, Any]]


def follow_next_url(
    client: ApiClient,
    first_path: str,
    params: Mapping[str, Any] | None,
    records_key: str,
    next_key: str,
    *,
    headers: Mapping[str, str] | None = None,
) -> Iterator[Page]:
    """Pages of a cursor API that answers the URL of the next page (Salesforce ``nextRecordsUrl``).

    ``params`` go on the first request only: the next URL already encodes the cursor. A
    relative next URL is resolved against the URL it came from, so an absolute first URL
    (Salesforce's ``instance_url``) keeps every later page on the same host.
    """
    url: str | None = client.url_for(first_path)
    page_params = params
    while url:
        body = client.get_json(url, params=page_params, headers=headers, required_keys=(records_key,))
        records = body[records_key] or []
        if records:
            yield records
        next_url = body.get(next_key)
        url, page_params = (urljoin(url, next_url) if next_url else None), None


def offset_pages(
    fetch: Callable[[int, int], tuple[Page, bool | int]],
    limit: int,
    *,
    start: int = 0,
) -> Iterator[Page]:
    """Pages of a limit/offset API. ``fetch(offset, limit)`` returns ``(records, more)``.

    ``more`` is either a flag (NetSuite ``hasMore``) or the total row count (Workday
    ``total``). The offset advances by the rows actually received, so a server that caps
    ``limit`` below what was asked for still gets every row.
    """
    offset = start
    while True:
        records, more = fetch(offset, limit)
        if not records:
            return
        yield records
        offset += len(records)
        has_more = more if isinstance(more, bool) else offset < more
        if not has_more:
            return


def page_number_pages(fetch: Callable[[int], tuple[Page, int]], *, start: int = 1) -> Iterator[Page]:
    """Pages of a page-number API. ``fetch(page)`` returns ``(records, page_count)``."""
    page = start
    while True:
        records, page_count = fetch(page)
        if not records:
            return
        yield records
        if page >= page_count:
            return
        page += 1


def change_keyset_pages(
    fetch: Callable[[Any, int], Page],
    change_of: Callable[[dict[str, Any]], Any],
    id_of: Callable[[dict[str, Any]], Hashable],
    since: Any,
    page_size: int,
) -> Iterator[Page]:
    """Pages ordered by (change time, id) that stay complete while the source is being written.

    ``fetch(since, page)`` must return records with change time ``>= since`` (or all
    records when ``since`` is None), ordered by change time then id, ``page_size`` per page,
    ``page`` counting from 1.

    Walking page numbers over a live ordering loses rows: when a record already read is
    updated it moves from its place to the end, every row behind that place shifts one
    position towards the front, and the row that slides onto the page just read is never
    seen. So after each full page this restarts at page 1 from the last change time seen
    (a keyset), skipping the ids already yielded at exactly that time. Only when a whole
    page shares one change time (no keyset can step past it) does it move on to the next
    page number. A record updated during the listing is yielded again with its new values,
    which is what an incremental load wants.

    Remaining limit: rows that share one change time across more than a page are still
    walked by page number, so an update inside such a block can shift one of its rows past
    the reader. Platforms stamp changes to the second or finer, so such blocks are rare and
    the next incremental run (which re-reads from its high-water mark) picks the row up.
    """
    cursor = since
    page = 1
    seen_at_cursor: set[Hashable] = set()
    while True:
        records = fetch(cursor, page)
        fresh = [r for r in records if not (change_of(r) == cursor and id_of(r) in seen_at_cursor)]
        if fresh:
            yield fresh
        if len(records) < page_size:
            return
        last_change = change_of(records[-1])
        at_last = {id_of(r) for r in records if change_of(r) == last_change}
        if last_change == cursor:
            # The whole page shares the cursor's change time: the keyset cannot advance.
            seen_at_cursor |= at_last
            page += 1
        else:
            cursor, page, seen_at_cursor = last_change, 1, at_last
