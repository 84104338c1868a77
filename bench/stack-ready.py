#!/usr/bin/env python3
"""Where a stack's time to ready goes, from `ocs-harness test --format json` output (issue 27's
baseline: how much of each scenario's wait is crossbar booting).

    bench/stack-ready.py FILE...     # e.g. target/ocs-harness/repeat/round-*.out

Every `stack_ready` event of the files counts once: `after` (the run's start to a ready stack),
`crossbar_boot` (crossbar's container start to its bridge answering) and the slowest agent's
`registration`. Prints the median and range of each over all stacks, crossbar's share of the
time to ready, and each scenario's median time to ready.
"""
import json
import statistics
import sys


def spread(values):
    values = sorted(values)
    return f"{statistics.median(values):6.2f} s  ({values[0]:.2f}–{values[-1]:.2f})"


def main(paths):
    stacks = []
    for path in paths:
        with open(path) as f:
            for line in f:
                if not line.startswith("{"):
                    continue
                event = json.loads(line)
                if event.get("event") == "stack_ready":
                    stacks.append(event)
    if not stacks:
        sys.exit(f"no stack_ready event in {' '.join(paths)} (is it `--format json` output?)")
    booted = [s for s in stacks if s.get("crossbar_boot") is not None]
    after = [s["after"] for s in stacks]
    boot = [s["crossbar_boot"] for s in booted]
    reg = [max(s["registration"].values()) for s in stacks if s.get("registration")]
    share = [s["crossbar_boot"] / s["after"] for s in booted if s["after"] > 0]
    print(f"{len(stacks)} stacks from {len(paths)} file(s)")
    print(f"  time to a ready stack   {spread(after)}")
    print(f"  crossbar's boot         {spread(boot)}")
    print(f"  slowest registration    {spread(reg)}")
    print(f"  crossbar's share        {100 * statistics.median(share):5.1f} % (median of each stack's)")
    print("per scenario (median time to ready, crossbar's boot, stacks):")
    by = {}
    for s in stacks:
        by.setdefault(s["scenario"], []).append(s)
    for name in sorted(by):
        runs = by[name]
        a = statistics.median(r["after"] for r in runs)
        b = [r["crossbar_boot"] for r in runs if r.get("crossbar_boot") is not None]
        b = f"{statistics.median(b):6.2f}" if b else "     -"
        print(f"  {name:42} {a:6.2f} {b} {len(runs):4}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
