#!/usr/bin/env python3
"""Times workload W6 (ResNet-20 on 3x32x32, batch 64, f32, one SGD step) in gradflow and its
peers side by side, interleaved, at 1 and 2 threads, and prints medians and same-run ratios.

Every peer is a long-lived process speaking peer_protocol.py's stdin protocol, pinned with
taskset (1 thread: core 0; 2 threads: cores 0-1) with its library's thread settings. All peers
are built and warmed up first; then each repetition runs every peer once, back to back, in a
rotating order, so that the machine's drift hits them alike. A run reports the median of its
steps; the table gives, per peer, the median over repetitions of those medians, and the median
over repetitions of the ratio peer / gradflow measured in the same repetition.

Usage: compare_w6.py --gradflow BIN [--python PY] [--reps 7] [--secs 1.0] [--steps 5]
                     [--threads 1,2] [--peers gradflow,torch-eager,torch-compile,jax-jit]
                     [--out results.jsonl]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def peer_command(name, threads, args):
    t = str(threads)
    env = {"OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t, "RAYON_NUM_THREADS": t}
    if name == "gradflow":
        return [args.gradflow], env
    if name in ("torch-eager", "torch-compile"):
        return [args.python, os.path.join(HERE, "w6_torch.py"), name.split("-")[1], t], env
    if name == "jax-jit":
        multi = "false" if threads == 1 else "true"
        env["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen={multi} intra_op_parallelism_threads={t}"
        return [args.python, os.path.join(HERE, "w6_jax.py"), t], env
    raise SystemExit(f"unknown peer {name}")


class Peer:
    def __init__(self, name, threads, args):
        argv, env = peer_command(name, threads, args)
        cpus = "0" if threads == 1 else ",".join(str(i) for i in range(threads))
        env = {**os.environ, **env, "PYTHONUNBUFFERED": "1", "TORCHINDUCTOR_COMPILE_THREADS": "1"}
        self.name, self.threads = name, threads
        self.process = subprocess.Popen(["taskset", "-c", cpus] + argv, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                        env=env, cwd=HERE)

    def command(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        while True:
            out = self.process.stdout.readline()
            if not out:
                raise RuntimeError(f"{self.name} ({self.threads} threads) stopped on '{line}'")
            if out.startswith(("OK", "RES", "ERR")):
                if out.startswith("ERR"):
                    raise RuntimeError(f"{self.name} ({self.threads} threads): {out.strip()}")
                return out.split()

    def close(self):
        try:
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            self.process.wait(timeout=30)
        except Exception:
            self.process.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gradflow", required=True, help="gradflow's peer: target/release/examples/perf_peer")
    parser.add_argument("--python", default=sys.executable, help="a python with torch and jax")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--secs", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--peers", default="gradflow,torch-eager,torch-compile,jax-jit")
    parser.add_argument("--out", help="append one JSON line per run to this file")
    args = parser.parse_args()
    names = args.peers.split(",")
    if names[0] != "gradflow":
        raise SystemExit("gradflow must come first: ratios are to it")
    log = open(args.out, "a") if args.out else None
    results = {}
    for threads in [int(t) for t in args.threads.split(",")]:
        peers = [Peer(name, threads, args) for name in names]
        try:
            for peer in peers:
                ms = peer.command("prep W6")[3]
                print(f"prepared {peer.name} ({threads} thread{'s' * (threads > 1)}) in {float(ms) / 1e3:.1f} s",
                      file=sys.stderr)
            for rep in range(args.reps):
                order = peers[rep % len(peers):] + peers[:rep % len(peers)]
                medians = {}
                for peer in order:
                    answer = peer.command(f"run W6 {args.secs} {args.steps}")
                    medians[peer.name] = float(answer[2])
                    record = {"rep": rep, "threads": threads, "peer": peer.name, "median_ms": medians[peer.name],
                              "steps": int(answer[3]), "loss": float(answer[4])}
                    if log:
                        log.write(json.dumps(record) + "\n")
                        log.flush()
                for name, ms in medians.items():
                    results.setdefault((threads, name), []).append((ms, ms / medians["gradflow"]))
                print(f"  rep {rep + 1}/{args.reps}, {threads} thread(s): "
                      + "  ".join(f"{n} {medians[n]:.1f} ms" for n in names), file=sys.stderr)
        finally:
            for peer in peers:
                peer.close()
    print("\nW6: ResNet-20 on 3x32x32, batch 64, f32, one SGD step — median ms per step over "
          f"{args.reps} repetitions (ratio: peer / gradflow in the same repetition, median)")
    print(f"{'peer':<15}" + "".join(f"{f'{t} thread(s)':>26}" for t in sorted({k[0] for k in results})))
    for name in names:
        row = f"{name:<15}"
        for threads in sorted({k[0] for k in results}):
            runs = results.get((threads, name), [])
            if runs:
                ms = statistics.median(r[0] for r in runs)
                ratio = statistics.median(r[1] for r in runs)
                row += f"{ms:>14.1f} ms  ×{ratio:>6.2f}  "
        print(row)


if __name__ == "__main__":
    main()
