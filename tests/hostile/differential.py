"""The fuzzer's inputs sent to amqplite and to a real RabbitMQ, close codes compared.

A reproduction tool for docs/reliability.md, not a test: RabbitMQ runs each channel in
its own process, so which of two errors in one input it reports first depends on timing,
and before connection.open it closes silently after a 3 s delay.  Each disagreement is
put in a class so the documented ones can be told from new ones::

    env $(cat /tmp/rmq.env) .venv/bin/python tests/hostile/differential.py 400 --seed 7

(AMQPLITE_RABBITMQ_URL names the RabbitMQ; it must have the guest user on vhost /.)
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import trio

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parent.parent / "support")]

from broker_process import broker_process  # noqa: E402
from fuzzing import LiveOutcome, hostile_input, pika_corpus, run_live  # noqa: E402


def classify(ours: LiveOutcome, theirs: LiveOutcome) -> str:
    """Why the two brokers answered differently (or 'agree')."""
    if ours.code == theirs.code:
        return "agree"
    if theirs.code is None and not ours.opened:
        return "rabbitmq closes silently before connection.open"
    if ours.code == 540 and theirs.code in (None, 505):
        return "unknown method id: rabbitmq resets (505 on channel 0), amqplite 540"
    if theirs.code is None:
        return "rabbitmq saw our EOF before its channel process reported"
    if ours.code in (503, 504) and theirs.code in (501, 504, 505):
        return "rabbitmq's channel error is asynchronous: a later frame error came first"
    if ours.code == 501 and theirs.code == 505:
        return "body frames past the declared size: 501 at once, rabbitmq 3.10 at the next frame"
    return f"other: amqplite {ours.code}, rabbitmq {theirs.code}"


async def compare(corpus: list[bytes], inputs: int, seed: int, rabbitmq_port: int) -> None:
    rng = random.Random(seed)
    classes: collections.Counter[str] = collections.Counter()
    pairs: collections.Counter[tuple[int | None, int | None]] = collections.Counter()
    with broker_process(cwd=Path(tempfile.mkdtemp())) as broker:
        for _ in range(inputs):
            data = hostile_input(rng, corpus)
            ours = await run_live(broker.port, data)
            theirs = await run_live(rabbitmq_port, data)
            classes[classify(ours, theirs)] += 1
            if ours.code != theirs.code:
                pairs[ours.code, theirs.code] += 1
    for name, count in classes.most_common():
        print(f"{count:6d}  {name}")
    print("disagreements (amqplite, rabbitmq):", dict(pairs.most_common()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", type=int, nargs="?", default=400)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    url = os.environ.get("AMQPLITE_RABBITMQ_URL")
    if not url:
        sys.exit("AMQPLITE_RABBITMQ_URL is not set")
    trio.run(compare, pika_corpus(), args.inputs, args.seed, urlsplit(url).port or 5672)


if __name__ == "__main__":
    main()
