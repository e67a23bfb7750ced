"""In-process: per-request CPU of the HTTP task with snapshots kept (no re-taking), 10,000
queues: main-thread CPU / requests; then profile by thread CPU."""
import sys, threading, time, http.client, base64, cProfile, pstats
import trio
from amqplite.app import serve
from amqplite.http.server import serve_http
from amqplite.http.snapshot import Freshness
AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()
PROFILE = len(sys.argv) > 1
def client(port, paths, stop, counts):
    c = http.client.HTTPConnection("127.0.0.1", port)
    while not stop.is_set():
        for p in paths:
            c.request("GET", p, headers={"Authorization": AUTH, "Accept-Encoding": "gzip"})
            r = c.getresponse(); b = r.read(); counts.append(len(b))
async def main():
    async with serve() as running, trio.open_nursery() as nursery:
        b = running.broker
        for i in range(10000): b.vhosts["/"].declare_queue(f"amqplite-bench.140212345678.mgmt.idle{i}")
        async def run(task_status):
            await serve_http(b, login=running.server.login, port=0, freshness=Freshness(min_period=1000, max_period=1000), task_status=task_status)
        port = await nursery.start(run)
        stop = threading.Event(); counts = []
        for paths in (["/api/queues"], ["/metrics"], ["/api/overview"]):
            counts.clear(); stop.clear()
            th = threading.Thread(target=client, args=(port, paths, stop, counts), daemon=True); th.start()
            while not counts: await trio.sleep(0.1)
            await trio.sleep(0.5)
            n0 = len(counts); t0 = time.thread_time()
            pr = cProfile.Profile(time.thread_time) if PROFILE else None
            if pr: pr.enable()
            await trio.sleep(2.0)
            if pr: pr.disable()
            cpu = time.thread_time() - t0; n = len(counts) - n0
            stop.set(); await trio.to_thread.run_sync(th.join)
            print(f"{paths[0]}: {n} requests, {cpu/n*1e6:.0f} us main-thread CPU per request, {counts[-1]} bytes")
            if pr: pstats.Stats(pr).sort_stats("tottime").print_stats(15)
        nursery.cancel_scope.cancel()
trio.run(main)
