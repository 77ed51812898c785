"""``make bench``: every benchmark, one table of times and ratios against peers of the same run."""

from __future__ import annotations

import platform
import sys

import numpy as np

from . import backward_per_node, checkpoint_chain, micrograd_step, mlp_step, sklearn_fit, tape_step
from .harness import fmt_time, one_blas_thread, steady_allocator


def main() -> int:
    allocator = steady_allocator()
    print(f"course_ad benchmarks · Python {platform.python_version()} · numpy {np.__version__} "
          f"· {platform.machine()} · BLAS pinned to 1 thread · {allocator}")
    rows = []
    with one_blas_thread():
        for label, run in [("(a) micrograd's demo step", micrograd_step.run),
                           ("(b) 784-H-10 MLP step", mlp_step.run),
                           ("(c) cheap gradient principle", mlp_step.run_cheap_gradient),
                           ("(d) backward per node", backward_per_node.run),
                           ("(e) digits training against scikit-learn", sklearn_fit.run),
                           ("(f) MLP step through a tape", tape_step.run),
                           ("(g) checkpointing a chain", checkpoint_chain.run)]:
            print(f"running {label} ...", flush=True)
            rows += run()
    print()
    print(f"{'benchmark':<34} {'case':<40} {'time':>11} {'ratio':>8}  target")
    missed = 0
    for r in rows:
        target = ""
        if r["target"] is not None:
            ok = r["ratio"] <= r["target"]
            missed += not ok
            target = f"≤ {r['target']:.2f} {'met' if ok else 'MISSED'}"
        ratio = f"1/{1 / r['ratio']:.0f}" if r["ratio"] < 0.01 else f"{r['ratio']:.2f}"
        print(f"{r['bench']:<34} {r['case']:<40} {fmt_time(r['time'])} {ratio:>8}x  {target}")
    print(f"\nratios are against the first row of each benchmark ({missed} target(s) missed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
