import time, trio, cProfile, pstats
from amqplite.app import serve
from amqplite.http.api import ManagementApp
from amqplite.http.request import Request
import base64
async def main():
    async with serve() as running:
        b = running.broker
        for i in range(10000): b.vhosts["/"].declare_queue(f"idle{i}")
        app = ManagementApp(b, login=running.server.login)
        req = Request("GET", "/api/overview", {"authorization": "Basic " + base64.b64encode(b"guest:guest").decode()})
        await app(req)
        t0 = time.thread_time()
        for _ in range(20): await app(req)
        print("overview", (time.thread_time() - t0) / 20 * 1e3, "ms")
        pr = cProfile.Profile(time.thread_time); pr.enable()
        for _ in range(20): await app(req)
        pr.disable(); pstats.Stats(pr).sort_stats("cumtime").print_stats(18)
trio.run(main)
