"""Run one stream micro scenario once (for callgrind): cg_stream.py catchup|fill|tail N"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("micro_new", "/tmp/sread-bin/micro_new.py")
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
mode, n = sys.argv[1], int(sys.argv[2])
if mode == "tail":
    m.bench_session_stream_tail_16b(n)
else:
    m._with_file_store(lambda store: m._stream_catchup(n, store, mode == "catchup"))
