"""Python bytecodes and calls per message by function, for callgrind_session.py's loop.

    PYTHONHASHSEED=0 PYTHONPATH=TREE .venv/bin/python -P docs/perf/data/hotpath/opcount.py MODE

MODE as for callgrind_session.py (e2e, backlog, publish).  The loop runs under
``sys.settrace`` with opcode events for 500 and for 2,500 messages; each function's count
is the difference divided by 2,000 (set-up cancels out).
"""

import collections
import runpy
import sys
from pathlib import Path
from types import FrameType
from typing import Any

LOOP = str(Path(__file__).resolve().parent / "callgrind_session.py")
mode = sys.argv[1]
ops: collections.Counter[str] = collections.Counter()
calls: collections.Counter[str] = collections.Counter()


def _local(frame: FrameType, event: str, arg: Any) -> Any:
    if event == "opcode":
        ops[frame.f_code.co_qualname] += 1
    return _local


def _tracer(frame: FrameType, event: str, arg: Any) -> Any:
    if event == "call":
        frame.f_trace_opcodes = True
        calls[frame.f_code.co_qualname] += 1
        return _local
    return None


def run(k: int) -> tuple[collections.Counter[str], collections.Counter[str]]:
    ops.clear()
    calls.clear()
    sys.argv = ["callgrind_session.py", mode, str(k), "2500"]
    sys.settrace(_tracer)
    try:
        runpy.run_path(LOOP, run_name="__main__")
    finally:
        sys.settrace(None)
    return ops.copy(), calls.copy()


ops_a, calls_a = run(500)
ops_b, calls_b = run(2500)
rows = sorted(((ops_b[k] - ops_a[k]) / 2000, (calls_b[k] - calls_a[k]) / 2000, k) for k in ops_b)
# The total leaves out negative differences (imports and caches filled in the first run only).
total_ops = sum(row[0] for row in rows if row[0] > 0)
total_calls = sum(row[1] for row in rows if row[1] > 0)
print(f"{mode}: {total_ops:.0f} bytecodes, {total_calls:.1f} Python calls per message")
for per_op, per_call, name in reversed(rows):
    if per_op >= 1:
        print(f"{per_op:7.1f} bytecodes {per_call:5.2f} calls  {name}")
