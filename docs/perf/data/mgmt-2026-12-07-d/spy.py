import sys, collections
incl = collections.Counter(); self_ = collections.Counter(); total = 0; threads = collections.Counter()
for line in open(sys.argv[1]):
    stack, _, n = line.rstrip().rpartition(" ")
    n = int(n); frames = stack.split(";")
    threads[frames[0]] += n
    total += n
    seen = set()
    for f in frames[1:]:
        key = f.split(" (")[0] + " " + f.split("/")[-1].rstrip(")") if "(" in f else f
        if key not in seen:
            incl[key] += n; seen.add(key)
    f = frames[-1]; self_[f.split(" (")[0] + " " + f.split("/")[-1].rstrip(")")] += n
print("total", total, dict(threads))
print("--- inclusive"); [print(f"{n:6d} {100*n/total:5.1f}% {k}") for k, n in incl.most_common(int(sys.argv[2]) if len(sys.argv) > 2 else 45)]
print("--- self"); [print(f"{n:6d} {100*n/total:5.1f}% {k}") for k, n in self_.most_common(30)]
