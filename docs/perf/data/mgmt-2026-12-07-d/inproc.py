"""In-process: 10,000 idle queues, the bench's pollers for SECONDS; main-thread CPU charged
to HTTP task steps, of which snapshot work (drive), worker-thread gzip CPU, per request."""
import asyncio, json, os, subprocess, sys, threading, time
import trio
from amqplite.app import serve
from amqplite.http import snapshot
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 10

class Acct(trio.abc.Instrument):
    def __init__(self):
        self.cpu = {}; self.kinds = {}; self.t0 = 0; self.where = {}
    def before_task_step(self, task):
        self.t0 = time.thread_time_ns()
    def after_task_step(self, task):
        d = time.thread_time_ns() - self.t0
        k = self.kinds.get(task)
        if k is None:
            k = self.kinds[task] = "http" if "serve_connection" in repr(_chain(task)) else "other"
        self.cpu[k] = self.cpu.get(k, 0) + d
        if k == "http":
            key = " > ".join(_where(task)[-3:])
            e = self.where.setdefault(key, [0, 0]); e[0] += 1; e[1] += d
def _where(task):
    out = []; coro = task.coro
    while coro is not None:
        code = getattr(coro, "cr_code", None) or getattr(coro, "ag_code", None)
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        if code: out.append(f"{code.co_name}:{frame.f_lineno if frame else '?'}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
    return out
def _chain(task):
    out = []; coro = task.coro
    while coro is not None:
        code = getattr(coro, "cr_code", None) or getattr(coro, "ag_code", None)
        if code: out.append(code.co_name)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
    return out

DRIVE = {"n": 0, "cpu": 0.0}; PACK = {"n": 0, "cpu": 0.0}
_drive = snapshot.drive
async def drive(work, step=snapshot.STEP, pause=trio.lowlevel.checkpoint):
    c = await _drive(work, step, pause); DRIVE["n"] += 1; DRIVE["cpu"] += c; return c
snapshot.drive = drive
_pack = snapshot.Body.pack
async def pack(self):
    c = await _pack(self)
    if c: PACK["n"] += 1; PACK["cpu"] += c
    return c
snapshot.Body.pack = pack

async def main():
    acct = Acct()
    async with serve(http_port=0) as running:
        b = running.broker
        for i in range(10000): b.vhosts["/"].declare_queue(f"amqplite-bench.140212345678.mgmt.idle{i}")
        url = f"http://guest:guest@127.0.0.1:{running.http_port}/"
        proc = await trio.lowlevel.open_process([sys.executable, "-m", "amqplite.bench.mgmt", "--poll", url, "--clients", "20"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = b""
        while not line.endswith(b"\n"): line += await proc.stdout.receive_some(100)
        await trio.sleep(3)
        trio.lowlevel.add_instrument(acct)
        for d in (DRIVE, PACK): d.update(n=0, cpu=0.0)
        t0 = time.thread_time(); w0 = time.monotonic()
        spy = None
        if os.environ.get("SPY"):
            spy = subprocess.Popen(["/work/wt/mgmt/.venv/bin/py-spy", "record", "-r", "1000", "-d", str(int(SECONDS)), "-p", str(os.getpid()), "-f", "raw", "-o", os.environ["SPY"]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await trio.sleep(SECONDS)
        if spy: spy.wait()
        main_cpu = time.thread_time() - t0; el = time.monotonic() - w0
        
        trio.lowlevel.remove_instrument(acct)
        await proc.stdin.aclose()
        out = b""
        while True:
            c = await proc.stdout.receive_some(65536)
            if not c: break
            out += c
        await proc.wait()
        polls = json.loads(out.split(b"\n")[-1] if out.strip().startswith(b"ready") else out)
        pct = lambda s: round(100 * s / el, 2)
        http = acct.cpu.get("http", 0) / 1e9
        req = polls["requests"] * el / el
        print(json.dumps({"main_pct": pct(main_cpu), "http_task_pct": pct(http), "other_task_pct": pct(acct.cpu.get("other", 0) / 1e9),
            "sched_pct": pct(main_cpu - sum(acct.cpu.values()) / 1e9),
            "drive_pct": pct(DRIVE["cpu"]), "drive_n": DRIVE["n"], "gzip_pct": pct(PACK["cpu"]), "gzip_n": PACK["n"],
            "requests": polls["requests"], "req_us": round(1e6 * (http - DRIVE["cpu"]) / polls["requests"], 1)}))
        for k, (n, d) in sorted(acct.where.items(), key=lambda x: -x[1][1])[:25]:
            print(f"{d/1e6:9.1f} ms {n:6d} steps {d/n/1e3:8.1f} us  {k}")
        running.cancel() if hasattr(running, "cancel") else None
        raise KeyboardInterrupt
try:
    trio.run(main)
except KeyboardInterrupt:
    pass
