"""Bodies in pieces (amqplite.http.pieces): reuse while the items are the same, a gzip made
of pieces deflated apart (and at different times) that is one valid member, entity tags."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence

from amqplite.http.pieces import Pieces, entity_tag
from amqplite.http.pieces import gzip as gzip_pieces


def _join(items: Sequence[object]) -> bytes:
    return b"".join(items)  # type: ignore[arg-type]


def test_a_piece_is_reused_while_its_items_are_the_same_objects_or_bytes() -> None:
    cache = Pieces()
    a, b = [b"one", b"two"], [b"three"]
    first = [cache.get(0, a, _join), cache.get(1, b, _join)]
    cache.begin()
    assert cache.get(0, list(a), _join) is first[0]  # the same items, in a new list
    assert cache.get(1, [b"thr" + b"ee"], _join) is first[1]  # equal bytes, another object
    cache.begin()
    changed = cache.get(1, [b"four"], _join)
    assert changed is not first[1] and changed.data == b"four"
    cache.begin()
    cache.begin()  # piece 0 was not asked for in the last snapshot: it is forgotten
    assert cache.get(0, a, _join) is not first[0]


def test_pieces_deflated_apart_and_at_different_times_make_one_gzip_member() -> None:
    cache = Pieces()
    texts = [b'{"name":"q%d","messages":0}' % i for i in range(3000)]
    chunks = [texts[i : i + 512] for i in range(0, len(texts), 512)]
    before = [cache.get(n, c, _join) for n, c in enumerate(chunks)]
    gzip_pieces(before)  # every piece deflated now
    cache.begin()
    chunks[2] = [*chunks[2][:-1], b'{"name":"changed"}']
    after = [cache.get(n, c, _join) for n, c in enumerate(chunks)]
    assert [p is q for p, q in zip(before, after, strict=True)] == [1, 1, 0, 1, 1, 1]
    body = gzip_pieces(after)
    whole = b"".join(p.data for p in after)
    assert gzip.decompress(body) == whole
    reader = zlib.decompressobj(31)  # one member, nothing after it
    assert reader.decompress(body) == whole and reader.eof and not reader.unused_data
    assert gzip_pieces([]) and gzip.decompress(gzip_pieces([])) == b""


def test_the_entity_tag_follows_the_bytes() -> None:
    cache = Pieces()
    one = [cache.get(0, [b"a", b"b"], _join), cache.get(1, [b"c"], _join)]
    again = Pieces()
    same = [again.get(0, [b"a", b"b"], _join), again.get(1, [b"c"], _join)]
    other = [again.get(2, [b"a", b"b"], _join), again.get(3, [b"d"], _join)]
    assert entity_tag(one) == entity_tag(same) != entity_tag(other)
