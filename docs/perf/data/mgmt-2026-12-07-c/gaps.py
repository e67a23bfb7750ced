import time, trio, gc
from amqplite.app import serve
from amqplite.http.rates import RateTracker
from amqplite.http.snapshot import Snapshots, Freshness, array_parts
from amqplite.http import metrics

def gaps(name, gen):
    t = time.thread_time(); mx = 0; n = 0; where = None
    for _ in gen:
        d = time.thread_time() - t; n += 1
        if d > mx: mx = d; where = n
        t = time.thread_time()
    d = time.thread_time() - t
    print(f"{name}: {n} yields, longest gap {mx*1e3:.2f} ms at yield {where}, tail {d*1e3:.2f} ms")

async def main():
    async with serve() as running:
        b = running.broker; vh = b.vhosts["/"]
        for i in range(10000):
            vh.declare_queue(f"amqplite-bench.140212345678.mgmt.idle{i}")
        s = Snapshots(b.clock, Freshness(max_period=0, live_below=1e9)); r = RateTracker()
        await s.queues(b, r, 0.0); await s.metrics(b)
        print("gc", gc.get_threshold(), gc.get_count())
        for _ in range(3):
            gaps("render_queues", s._render_queues(b, r, 0.0, {}, {}))
            L = await s.queues(b, r, 0.0)
            frags = [f for _, f in L.items(["/"])]
            gaps("array_parts", array_parts(frags, []))
            gaps("metrics", metrics.render_parts(b, s._metric_lines, []))
trio.run(main)
