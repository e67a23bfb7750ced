"""Run `amqplite serve ...` with GC timing; on SIGUSR2 append a JSON line to $GCOUT."""
import gc, json, os, signal, sys, time, threading
stats = {0: [0, 0.0, 0], 1: [0, 0.0, 0], 2: [0, 0.0, 0]}
t = [0.0]
def cb(phase, info):
    if phase == "start":
        t[0] = time.thread_time()
    else:
        s = stats[info["generation"]]
        s[0] += 1; s[1] += time.thread_time() - t[0]; s[2] += info["collected"]
gc.callbacks.append(cb)
def dump(*_):
    threads = {}; sysx = {}
    for tid in os.listdir("/proc/self/task"):
        f = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        threads[tid] = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK"); sysx[tid] = int(f[12]) / os.sysconf("SC_CLK_TCK")
    with open(os.environ["GCOUT"], "a") as f:
        f.write(json.dumps({"t": time.monotonic(), "gc": stats, "counts": gc.get_count(), "threshold": gc.get_threshold(), "frozen": gc.get_freeze_count(), "objects": len(gc.get_objects()) if os.environ.get("GCOBJ") else None, "threads": threads, "proc": sum(threads.values()), "sys": sum(sysx.values())}) + "\n")
signal.signal(signal.SIGUSR2, dump)
from amqplite.cli import main
sys.argv = ["amqplite"] + sys.argv[1:]
sys.exit(main())
