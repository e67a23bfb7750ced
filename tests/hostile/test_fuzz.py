"""The frame fuzzer: mutated pika traffic and generated frames against the codec and a
live broker (inputs and oracles in fuzzing.py).

In the suite each test runs briefly; ``make fuzz`` runs the long versions (marked
``fuzz``) with ``AMQPLITE_FUZZ_INPUTS`` codec inputs (default 1,000,000) and
``AMQPLITE_FUZZ_LIVE_INPUTS`` live connections (default 20,000), and prints the figures
that docs/reliability.md records.
"""

from __future__ import annotations

import collections
import os
import random
import time
from pathlib import Path

import pytest
import trio
from broker_process import BrokerProcess, broker_process
from fuzzing import (
    LIVE_CODES,
    Frames,
    Witness,
    contents,
    hostile_input,
    method_frames,
    pika_corpus,
    run_codec,
    run_live,
    traffic,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ_INPUTS = int(os.environ.get("AMQPLITE_FUZZ_INPUTS", "1000000"))
FUZZ_LIVE_INPUTS = int(os.environ.get("AMQPLITE_FUZZ_LIVE_INPUTS", "20000"))
#: Log lines that mean the broker hit a bug (an exception it did not expect).
CRASH_MARKS = ("Traceback", "unexpected error", "protocol failure", "error handling")
#: The live broker's resident memory may grow by at most this much over a run.
RSS_GROWTH_KIB = 64 << 10

_quick = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


@pytest.fixture(scope="module")
def corpus() -> Frames:
    return pika_corpus()


def test_the_corpus_is_a_real_pika_session(corpus: Frames) -> None:
    kinds = collections.Counter(frame[0] for frame in corpus[1:])
    assert corpus[0] == b"AMQP\x00\x00\x09\x01"
    assert kinds[1] > 25 and kinds[2] >= 4 and kinds[3] >= 6  # methods, headers, bodies


@_quick
@given(data=st.data())
def test_codec_survives_mutated_traffic(corpus: Frames, data: st.DataObject) -> None:
    # run_codec raises anything but the codec's documented errors and codes.
    run_codec(data.draw(traffic(corpus)), data.draw(st.randoms(use_true_random=False)))


@_quick
@given(frames=st.lists(method_frames | contents, min_size=1, max_size=6), rng=st.randoms())
def test_codec_survives_generated_frames_after_the_handshake(
    corpus: Frames, frames: list[bytes], rng: random.Random
) -> None:
    outcome = run_codec(b"".join(corpus[:5] + frames), rng)
    assert outcome.events >= 5 or outcome.code is not None


def _codec_campaign(corpus: Frames, inputs: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    codes: collections.Counter[int | None] = collections.Counter()
    worst = 0.0
    started = time.process_time()
    for _ in range(inputs):
        data = hostile_input(rng, corpus)
        before = time.perf_counter()
        codes[run_codec(data, rng).code] += 1
        worst = max(worst, time.perf_counter() - before)
    return {
        "inputs": inputs,
        "cpu_s": round(time.process_time() - started, 1),
        "worst_ms": round(worst * 1000, 2),
        "codes": dict(sorted(codes.items(), key=lambda kv: kv[0] or 0)),
    }


def test_codec_fuzz_short(corpus: Frames) -> None:
    figures = _codec_campaign(corpus, 2_000, seed=12)
    assert figures["worst_ms"] < 1_000  # type: ignore[operator]


@pytest.mark.long
@pytest.mark.fuzz
@pytest.mark.timeout(0)
def test_codec_fuzz_long(corpus: Frames) -> None:
    figures = _codec_campaign(corpus, FUZZ_INPUTS, seed=int(os.environ.get("SEED", "1")))
    print(f"\ncodec fuzz: {figures}")
    assert figures["worst_ms"] < 1_000  # type: ignore[operator]


async def _live_campaign(
    broker: BrokerProcess, corpus: Frames, inputs: int, seed: int
) -> dict[str, object]:
    rng = random.Random(seed)
    witness = Witness()
    codes: collections.Counter[int | None] = collections.Counter()
    worst = 0.0
    base_rss = broker.rss_kib()
    pending = [hostile_input(rng, corpus) for _ in range(inputs)]
    mismatches: list[tuple[int | None, int | None, bytes]] = []

    async def worker() -> None:
        nonlocal worst
        while pending:
            data = pending.pop()
            outcome = await run_live(broker.port, data)
            assert outcome.code is None or outcome.code in LIVE_CODES, outcome
            codes[outcome.code] += 1
            predicted = run_codec(data, random.Random(0)).code
            if outcome.code != predicted:
                mismatches.append((predicted, outcome.code, data))
            worst = max(worst, outcome.seconds)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(witness.run, broker.port)
        async with trio.open_nursery() as workers:
            for _ in range(8):
                workers.start_soon(worker)
        witness.stop = True
    assert broker.proc.poll() is None, "the broker died"
    log = broker.log()
    for mark in CRASH_MARKS:
        assert mark not in log, log[log.index(mark) - 500 :][:3000]
    assert witness.received == witness.sent > 0
    # The codec's verdict and the broker's agree but where the session closes first for
    # a reason of its own (a server-only method: 503, a refused login: 403, ...).
    assert len(mismatches) <= max(3, inputs // 20), collections.Counter(
        (a, b) for a, b, _ in mismatches
    )
    rss_growth = broker.rss_kib() - base_rss
    assert rss_growth < RSS_GROWTH_KIB, rss_growth
    return {
        "inputs": inputs,
        "worst_s": round(worst, 2),
        "codes": dict(sorted(codes.items(), key=lambda kv: kv[0] or 0)),
        "witness_messages": witness.received,
        "codec_disagrees": len(mismatches),
        "rss_growth_kib": rss_growth,
        "peak_rss_kib": broker.rss_kib("VmHWM"),
    }


async def test_live_broker_survives_fuzzed_connections(tmp_path: Path, corpus: Frames) -> None:
    with broker_process(cwd=tmp_path) as broker:
        with trio.fail_after(60):
            await _live_campaign(broker, corpus, 150, seed=12)


@pytest.mark.long
@pytest.mark.fuzz
@pytest.mark.timeout(0)
async def test_live_fuzz_long(tmp_path: Path, corpus: Frames) -> None:
    with broker_process(cwd=tmp_path) as broker:
        figures = await _live_campaign(
            broker, corpus, FUZZ_LIVE_INPUTS, seed=int(os.environ.get("SEED", "1"))
        )
    print(f"\nlive fuzz: {figures}")
