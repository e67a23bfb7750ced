"""Pairs of e2e with/without pollers against a broker run under acct.py; per half: broker
main-thread CPU by kind, other threads, pollers' CPU, load generator CPU, machine /proc/stat."""
import asyncio, json, os, signal, sys, time
from amqplite.bench import mgmt
from amqplite.bench.procstat import cpu_seconds
from amqplite.bench.scenarios import RunConfig, run_scenario
from amqplite.bench.commands import mgmt_config

URL, HTTP, PID, OUT, RUNS = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
EXTRA = sys.argv[6:]  # poller extra args

def machine():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v  # user nice system idle iowait irq softirq steal

def lines():
    with open(OUT) as f:
        return [json.loads(l) for l in f]

async def snap():
    n = len(lines()) if os.path.exists(OUT) else 0
    os.kill(PID, signal.SIGUSR1)
    for _ in range(200):
        await asyncio.sleep(0.01)
        ls = lines() if os.path.exists(OUT) else []
        if len(ls) > n:
            return ls[-1]
    raise RuntimeError("no dump")

async def half(config, polled):
    poll = None
    if polled:
        poll = mgmt.Pollers(HTTP, 20, True)
        poll.argv += EXTRA
        await poll.start(2.0)
    a = await snap(); m0 = machine(); t0 = time.monotonic(); c0 = time.process_time()
    p0 = cpu_seconds(poll.proc.pid) if poll else None
    res = await run_scenario(URL, config, broker_pid=PID)
    b = await snap(); m1 = machine(); el = time.monotonic() - t0; cl = time.process_time() - c0
    p1 = cpu_seconds(poll.proc.pid) if poll else None
    polls = await poll.stop() if poll else {}
    dm = [y - x for x, y in zip(m0, m1)]
    tot = sum(dm[:8]) or 1
    msgs = res.delivered or 1
    d = lambda k: (b["cpu_ns"].get(k, 0) - a["cpu_ns"].get(k, 0))
    main = b["main_cpu_ns"] - a["main_cpu_ns"]; proc = b["proc_cpu_ns"] - a["proc_cpu_ns"]
    out = {
        "polled": polled, "msg_s": res.msg_per_s, "delivered": res.delivered,
        "us_msg_total": round(proc / 1e3 / msgs, 2),
        "us_msg_amqp": round(d("amqp") / 1e3 / msgs, 2),
        "us_msg_http": round(d("http") / 1e3 / msgs, 2),
        "us_msg_sched": round((main - d("amqp") - d("http")) / 1e3 / msgs, 2),
        "us_msg_threads": round((proc - main) / 1e3 / msgs, 2),
        "http_pct": round(100 * d("http") / 1e9 / el, 2),
        "threads_pct": round(100 * (proc - main) / 1e9 / el, 2),
        "broker_pct": round(100 * proc / 1e9 / el, 1),
        "loadgen_pct": round(100 * cl / el, 1),
        "pollers_pct": round(100 * (p1 - p0) / el, 1) if poll else None,
        "machine": {k: round(200 * dm[i] / tot, 1) for i, k in enumerate(["user", "nice", "sys", "idle", "iowait", "irq", "softirq", "steal"])},
        "max_step_ms": {k: round(v / 1e6, 2) for k, v in b["max_wall_ns"].items()},
        "hist": b["hist"], "where": b.get("where"),
        "polls": {k: polls.get(k) for k in ("requests", "bytes", "p50_ms", "failed_clients")},
    }
    print(json.dumps(out), flush=True)
    return out

async def main():
    import argparse
    ns = argparse.Namespace(size=[16], prefetch=[100], duration=4.0, producers=1, consumers=1, inflight=5000, drain_timeout=30.0)
    try:
        config = mgmt_config(ns)
    except Exception as e:
        print("mgmt_config failed", e); raise
    names = await mgmt._declare_idle(URL, 10000, "acct")
    import urllib.request, base64
    def warm():
        for path in ("api/queues", "metrics", "api/overview"):
            r = urllib.request.Request(HTTP.replace("guest:guest@", "") + path, headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode(), "Accept-Encoding": "gzip"})
            urllib.request.urlopen(r, timeout=120).read()
    await asyncio.get_running_loop().run_in_executor(None, warm)  # first snapshots: everything rendered once
    try:
        for i in range(RUNS):
            for polled in ((False, True) if i % 2 == 0 else (True, False)):
                await half(config, polled)
                await asyncio.sleep(0.5)
    finally:
        await mgmt._delete_idle(URL, names, "acct")

asyncio.run(main())
