"""``make bench``: every benchmark, one table of times and ratios against peers of the same run.

The headline figures run in the environment a user has by default. ``--tuned`` runs the MLP
benchmarks again with glibc's allocator tuned (``harness.steady_allocator``); every row it
prints is labelled so."""

from __future__ import annotations

import platform
import sys

import numpy as np

from . import backward_per_node, checkpoint_chain, micrograd_step, mlp_step, sklearn_fit, tape_step
from .harness import fmt_time, one_blas_thread, steady_allocator

BENCHMARKS = [
    ("(a) micrograd's demo step", micrograd_step.run),
    ("(b) 784-H-10 MLP step", mlp_step.run),
    ("(c) cheap gradient principle", mlp_step.run_cheap_gradient),
    ("(d) backward per node", backward_per_node.run),
    ("(e) digits training against scikit-learn", sklearn_fit.run),
    ("(f) MLP step through a tape", tape_step.run),
    ("(g) checkpointing a chain", checkpoint_chain.run),
]
TUNED = BENCHMARKS[1:3]  # the array benchmarks, where the allocator matters


def main(argv: list[str]) -> int:
    tuned = "--tuned" in argv
    environment = "default allocator"
    if tuned:
        environment = f"tuned: glibc mallopt ({steady_allocator()})"
    print(f"course_ad benchmarks · Python {platform.python_version()} · numpy {np.__version__} "
          f"· {platform.machine()} · BLAS pinned to 1 thread · {environment}")
    rows = []
    with one_blas_thread():
        for label, run in TUNED if tuned else BENCHMARKS:
            print(f"running {label} ...", flush=True)
            rows += run()
    suffix = " [tuned: glibc mallopt]" if tuned else ""
    width = max([34] + [len(r["bench"] + suffix) for r in rows])
    print()
    print(f"{'benchmark':<{width}} {'case':<40} {'time':>11} {'ratio':>8}  target")
    missed = 0
    for r in rows:
        target = ""
        if r["target"] is not None:
            ok = r["ratio"] <= r["target"]
            missed += not ok
            target = f"≤ {r['target']:.2f} {'met' if ok else 'MISSED'}"
        ratio = f"1/{1 / r['ratio']:.0f}" if r["ratio"] < 0.01 else f"{r['ratio']:.2f}"
        bench = r["bench"] + suffix
        print(f"{bench:<{width}} {r['case']:<40} {fmt_time(r['time'])} {ratio:>8}x  {target}")
    print(f"\nratios are against the first row of each benchmark ({missed} target(s) missed)")
    if tuned:
        print("these figures use allocator tuning a user does not have by default (glibc mallopt)")
    else:
        print("`python -m benchmarks --tuned` repeats (b) and (c) with glibc's allocator tuned")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
