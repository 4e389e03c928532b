"""The stdin protocol of the peer benchmarks (see examples/perf_peer.rs), for the Python peers
of W6 in this folder.

One command per line on stdin, one answer per command on stdout:
  prep W                   build workload W and warm it up      -> OK prep W <ms>
  run W MIN_SECS MIN_STEPS time single steps until both limits  -> RES W <median_ms> <steps> <last_loss>
  quit
Anything else answers ERR.
"""
import sys
import time


def serve(build):
    """Answers the protocol on stdin/stdout. `build(name)` returns a step function (one training
    step, returning the loss as a Python float) or None for an unknown workload."""
    steps = {}
    for line in sys.stdin:
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "quit":
            break
        try:
            if fields[0] == "prep" and len(fields) == 2:
                t = time.perf_counter()
                step = build(fields[1])
                if step is None:
                    answer = f"ERR unknown workload {fields[1]}"
                else:
                    for _ in range(3):
                        step()
                    steps[fields[1]] = step
                    answer = f"OK prep {fields[1]} {(time.perf_counter() - t) * 1e3:.1f}"
            elif fields[0] == "run" and len(fields) == 4:
                name, min_secs, min_steps = fields[1], float(fields[2]), int(fields[3])
                if name not in steps:
                    answer = f"ERR {name} not prepared"
                else:
                    answer = run(name, steps[name], min_secs, min_steps)
            else:
                answer = "ERR " + line.strip()
        except Exception as e:  # a failing workload answers, the peer stays up
            answer = f"ERR {fields[0]}: {type(e).__name__}: {e}"
        print(answer, flush=True)


def run(name, step, min_secs, min_steps):
    step()
    step()
    times, loss = [], 0.0
    start = time.perf_counter()
    while len(times) < min_steps or time.perf_counter() - start < min_secs:
        t = time.perf_counter()
        loss = step()
        times.append((time.perf_counter() - t) * 1e3)
        if len(times) >= 5000:
            break
    times.sort()
    return f"RES {name} {times[len(times) // 2]:.4f} {len(times)} {loss:.5f}"
