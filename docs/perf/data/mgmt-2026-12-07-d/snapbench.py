import time, trio, cProfile, pstats, sys
from amqplite.app import build_broker
from amqplite.http.snapshot import Snapshots, Freshness
from amqplite.http.rates import RateTracker
async def main():
    b = build_broker(None)
    for i in range(10000): b.vhosts["/"].declare_queue(f"amqplite-bench.140212345678.mgmt.idle{i}")
    snaps = Snapshots(b.clock, Freshness(max_period=0))
    rates = RateTracker()
    await snaps.queues(b, rates, 0.0); await snaps.metrics(b)
    for kind in ("queues", "metrics"):
        ts = []
        for i in range(8):
            t0 = time.thread_time()
            if kind == "queues": await snaps._take_queues(b, rates, i + 1.0)
            else: await snaps._take_metrics(b)
            ts.append(time.thread_time() - t0)
        print(kind, [round(t * 1000, 1) for t in ts], "ms (incl. gzip wait)")
    if len(sys.argv) > 1:
        pr = cProfile.Profile(); pr.enable()
        for i in range(5):
            await snaps._take_queues(b, rates, 20.0 + i); await snaps._take_metrics(b)
        pr.disable(); pstats.Stats(pr).sort_stats("tottime").print_stats(18)
trio.run(main)
