"""Run `amqplite serve ...` with a trio instrument that charges main-thread CPU to task kinds.

SIGUSR1 appends the cumulative counters (JSON line) to $ACCT_OUT.  Kinds: http (tasks of
amqplite.http.server), amqp (everything else), plus the scheduler's own time (main-thread CPU
outside task steps) and the other threads' CPU (gzip workers)."""
import json, os, signal, sys, time, threading
import trio

thread_ns = time.thread_time_ns
wall_ns = time.perf_counter_ns


class Acct(trio.abc.Instrument):
    def __init__(self):
        self.cpu = {}
        self.steps = {}
        self.max_wall = {}
        self.hist = {}  # kind -> {bucket_ms: count} of step wall time >= 1 ms
        self.t0 = 0
        self.kinds = {}
        self.where = {}
        self.w0 = 0

    def before_task_step(self, task):
        self.t0 = thread_ns()
        self.w0 = wall_ns()

    def after_task_step(self, task):
        d = thread_ns() - self.t0
        w = wall_ns() - self.w0
        kind = self.kinds.get(task)
        if kind is None:
            kind = classify(task)
            if kind != "?":
                self.kinds[task] = kind
        self.cpu[kind] = self.cpu.get(kind, 0) + d
        self.steps[kind] = self.steps.get(kind, 0) + 1
        if w > self.max_wall.get(kind, 0):
            self.max_wall[kind] = w
        if d >= 2_000_000 and kind == "http":
            coro = task.coro; chain = []
            while coro is not None:
                code = getattr(coro, "cr_code", None) or getattr(coro, "ag_code", None)
                frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
                if code is not None:
                    chain.append(f"{code.co_name}:{frame.f_lineno if frame else '?'}")
                coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
            key = " > ".join(chain[-4:])
            self.where[key] = self.where.get(key, 0) + 1
        if d >= 1_000_000:
            h = self.hist.setdefault(kind, {})
            b = "1-2" if d < 2e6 else "2-5" if d < 5e6 else "5-10" if d < 1e7 else "10-20" if d < 2e7 else ">=20"
            h[b] = h.get(b, 0) + 1


def classify(task):
    coro = task.coro
    seen = False
    while coro is not None:
        code = getattr(coro, "cr_code", None) or getattr(coro, "ag_code", None)
        if code is not None:
            seen = True
            if "/amqplite/http/" in code.co_filename:
                return "http"
        coro = getattr(coro, "cr_await", None)
    return "amqp" if seen and task.coro.cr_frame is not None and task.coro.cr_await is not None else "?"


ACCT = Acct()
MAIN = threading.get_ident()


def dump(signum, frame):
    t = os.times()
    rec = {
        "t": time.monotonic(),
        "proc_cpu_ns": int((t.user + t.system) * 1e9),
        "main_cpu_ns": thread_ns(),
        "cpu_ns": dict(ACCT.cpu),
        "steps": dict(ACCT.steps),
        "max_wall_ns": dict(ACCT.max_wall),
        "hist": json.loads(json.dumps(ACCT.hist)),
        "where": dict(ACCT.where),
        "counts": json.loads(json.dumps(COUNTS)),
    }
    ACCT.where = {}
    ACCT.max_wall = {}
    ACCT.hist = {}
    with open(os.environ["ACCT_OUT"], "a") as f:
        f.write(json.dumps(rec) + "\n")


_run = trio.run


def run(*a, **k):
    k.setdefault("instruments", []).append(ACCT)
    signal.signal(signal.SIGUSR1, dump)
    return _run(*a, **k)


trio.run = run
import gc as _gc
from amqplite.http import render as _render
_qj = _render.queue_json
COUNTS = {"queue_json": 0, "gc": {}}
def _counted(*a, **k):
    COUNTS["queue_json"] += 1
    return _qj(*a, **k)
_render.queue_json = _counted
_gcstart = [0]
def _gccb(phase, info):
    if phase == "start":
        _gcstart[0] = time.thread_time_ns()
    else:
        g = str(info["generation"]); d = time.thread_time_ns() - _gcstart[0]
        c = COUNTS["gc"].setdefault(g, [0, 0, 0]); c[0] += 1; c[1] += d; c[2] = max(c[2], d)
_gc.callbacks.append(_gccb)
from amqplite.cli import main  # noqa: E402

sys.argv[0] = "amqplite"
raise SystemExit(main())
