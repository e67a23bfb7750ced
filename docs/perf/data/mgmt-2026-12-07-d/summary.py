"""Medians over every pair of the bench files given: msg/s with / without, broker CPU per
message with / without, per build (the first line of each file names the build)."""
import re, statistics, sys
from collections import defaultdict
pairs = defaultdict(list)
for path in sys.argv[1:]:
    lines = open(path).read().splitlines()
    build = lines[0][:7]
    for line in lines:
        m = re.search(r"pair \d+: ([\d.]+) / ([\d.]+) msg/s  broker CPU ([\d.]+) / ([\d.]+) us/msg", line)
        if m:
            w, wo, cw, cwo = map(float, m.groups())
            pairs[build].append((w / wo, cw / cwo, cw - cwo, w, wo))
for build, ps in pairs.items():
    print(f"{build}: {len(ps)} pairs; msg/s with/without median {statistics.median(p[0] for p in ps):.3f} "
          f"(range {min(p[0] for p in ps):.2f}-{max(p[0] for p in ps):.2f}); broker CPU per message "
          f"with/without median {statistics.median(p[1] for p in ps):.3f} (range {min(p[1] for p in ps):.2f}-"
          f"{max(p[1] for p in ps):.2f}), extra {statistics.median(p[2] for p in ps):.2f} us/msg; "
          f"msg/s without: median {statistics.median(p[4] for p in ps):.0f}")
