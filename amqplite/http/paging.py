"""RabbitMQ's paged listings (``?page=N&page_size=M``), with its answers and error texts.

Layer: ``amqplite/http``.  Pure.  Without ``page`` a listing is the plain JSON array; with
it, the answer is RabbitMQ's page object (``filtered_count``, ``item_count``, ``items``,
``page``, ``page_count``, ``page_size``, ``total_count``).  ``page_size`` defaults to 100
and may be 1..500; page 1 always exists, a later page past the end is a 400
``page_out_of_range`` (RabbitMQ 3.10 answers exactly these).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from amqplite.http.request import HTTPError, Request

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500


@attrs.frozen(slots=True)
class Page:
    number: int  # from 1
    size: int

    def slice(self, count: int) -> tuple[int, int]:
        """The ``[start, stop)`` of this page among ``count`` items; 400 past the end."""
        start = (self.number - 1) * self.size
        if self.number > 1 and start >= count:
            raise HTTPError(
                400,
                "page_out_of_range",
                f"Page out of range, page: {self.number} page size: {self.size}, len: {count}",
            )
        return start, min(count, start + self.size)


def requested(request: Request) -> Page | None:
    """The page the request asks for, or None for the whole listing."""
    query = dict(request.query)
    page_text = query.get("page")
    if page_text is None:
        return None
    size_text = query.get("page_size")
    try:
        number = int(page_text)
        size = DEFAULT_PAGE_SIZE if size_text is None else int(size_text)
    except ValueError:
        raise HTTPError(400, "bad_request", "Pagination parameters are invalid") from None
    if number < 1 or not 1 <= size <= MAX_PAGE_SIZE:
        shown = "undefined" if size_text is None else str(size)
        raise HTTPError(
            400,
            "invalid_pagination_parameters",
            f"Invalid pagination parameters: page number {number}, page size {shown}",
        )
    return Page(number, size)


def page_json(page: Page, items: Sequence[bytes], total: int) -> bytes:
    """The page object around ``items`` (already-encoded JSON values, after any filter);
    ``total`` is the count before the filter."""
    start, stop = page.slice(len(items))
    chosen = items[start:stop]
    page_count = -(-len(items) // page.size)
    return b"".join(
        (
            b'{"filtered_count":%d,"item_count":%d,"items":[' % (len(items), len(chosen)),
            b",".join(chosen),
            b'],"page":%d,"page_count":%d,"page_size":%d,"total_count":%d}'
            % (page.number, page_count, page.size, total),
        )
    )
