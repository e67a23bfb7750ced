"""Idle cost: 10,000 idle queues, 20 pollers + dashboard for SECONDS; broker CPU by thread, GC."""
import asyncio, json, os, signal, sys, time, subprocess
from amqplite.bench import mgmt
from amqplite.bench.procstat import cpu_seconds
URL, HTTP, PID, OUT, SECONDS = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
SPY = os.environ.get("SPY")
def lines():
    return [json.loads(l) for l in open(OUT)] if os.path.exists(OUT) else []
async def snap():
    n = len(lines()); os.kill(PID, signal.SIGUSR2)
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
        await asyncio.get_running_loop().run_in_executor(None, warm)
        poll = mgmt.Pollers(HTTP, 20, True); await poll.start(3.0)
        a = await snap(); p0 = cpu_seconds(poll.proc.pid); t0 = time.monotonic()
        spy = None
        if SPY:
            spy = subprocess.Popen(["/work/wt/mgmt/.venv/bin/py-spy", "record", "--nonblocking", "-r", "200", "-d", str(int(SECONDS)), "-p", str(PID), "-f", "raw", "-o", SPY, "--threads"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await asyncio.sleep(SECONDS)
        b = await snap(); p1 = cpu_seconds(poll.proc.pid); el = time.monotonic() - t0
        polls = await poll.stop()
        if spy: spy.wait()
    finally:
        await mgmt._delete_idle(URL, names, "idle")
    pct = lambda s: round(100 * s / el, 2)
    th = {k: pct(v - a["threads"].get(k, 0)) for k, v in b["threads"].items()}
    gcd = {g: [b["gc"][g][0] - a["gc"][g][0], round(1000 * (b["gc"][g][1] - a["gc"][g][1]), 1)] for g in b["gc"]}
    print(json.dumps({"broker_pct": pct(b["proc"] - a["proc"]), "broker_sys_pct": pct(b["sys"] - a["sys"]), "threads_pct": {k: v for k, v in th.items() if v}, "gc_n_ms": gcd,
        "pollers_pct": round(100 * (p1 - p0) / el, 2), "requests": polls.get("requests"), "not_modified": polls.get("not_modified"), "p50_ms": polls.get("p50_ms"), "p99_ms": polls.get("p99_ms")}))
asyncio.run(main())
