"""Idle cost: broker under acct.py with 10,000 idle queues; 20 pollers + dashboard for
SECONDS; broker CPU by kind (% of a core), pollers' CPU, requests, bytes, longest step."""
import asyncio, json, os, signal, sys, time
from amqplite.bench import mgmt
from amqplite.bench.procstat import cpu_seconds
URL, HTTP, PID, OUT, SECONDS = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
def lines():
    return [json.loads(l) for l in open(OUT)] if os.path.exists(OUT) else []
async def snap():
    n = len(lines()); os.kill(PID, signal.SIGUSR1)
    while len(lines()) == n: await asyncio.sleep(0.01)
    return lines()[-1]
async def main():
    names = await mgmt._declare_idle(URL, 10000, "idle")
    try:
        import urllib.request, base64
        def warm():
            for path in ("api/queues", "metrics", "api/overview"):
                r = urllib.request.Request(HTTP.replace("guest:guest@", "") + path, headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode(), "Accept-Encoding": "gzip"})
                urllib.request.urlopen(r, timeout=120).read()
        await asyncio.get_running_loop().run_in_executor(None, warm)  # first snapshots: everything rendered once
        poll = mgmt.Pollers(HTTP, 20, True); await poll.start(3.0)
        a = await snap(); p0 = cpu_seconds(poll.proc.pid); t0 = time.monotonic()
        await asyncio.sleep(SECONDS)
        b = await snap(); p1 = cpu_seconds(poll.proc.pid); el = time.monotonic() - t0
        polls = await poll.stop()
    finally:
        await mgmt._delete_idle(URL, names, "idle")
    pct = lambda ns: round(100 * ns / 1e9 / el, 2)
    main_ = b["main_cpu_ns"] - a["main_cpu_ns"]; proc = b["proc_cpu_ns"] - a["proc_cpu_ns"]
    http = b["cpu_ns"].get("http", 0) - a["cpu_ns"].get("http", 0)
    amqp = b["cpu_ns"].get("amqp", 0) - a["cpu_ns"].get("amqp", 0)
    print(json.dumps({"broker_pct": pct(proc), "http_pct": pct(http), "amqp_pct": pct(amqp), "sched_pct": pct(main_ - http - amqp),
        "threads_pct": pct(proc - main_), "pollers_pct": round(100 * (p1 - p0) / el, 2),
        "max_step_ms": {k: round(v / 1e6, 2) for k, v in b["max_wall_ns"].items()}, "cpu_steps_ge_1ms": b["hist"], "where": b.get("where"), "counts_a": a.get("counts"), "counts_b": b.get("counts"),
        "requests": polls.get("requests"), "not_modified": polls.get("not_modified"), "bytes": polls.get("bytes"), "p50_ms": polls.get("p50_ms"), "p99_ms": polls.get("p99_ms")}))
asyncio.run(main())
