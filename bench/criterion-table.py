#!/usr/bin/env python3
"""Prints the last `cargo bench -p ringcast-bench` results as markdown tables.

Reads criterion's estimates under target/criterion (the median point
estimate of each bench), groups them by criterion group and parameter, and
shows each implementation's throughput with ringcast's ratio to it (above
1x: ringcast is faster). Benches not re-run within an hour of the newest one
are left out, so renamed or deleted benches do not linger.

    python3 bench/criterion-table.py [target/criterion]
"""

import json
import sys
from pathlib import Path

STALE_S = 3600


def unit(throughput, per_second):
    if "Bytes" in throughput:
        return f"{per_second / 2**30:.2f} GiB/s"
    if per_second >= 1e6:
        return f"{per_second / 1e6:.2f} M/s"
    return f"{per_second / 1e3:.1f} K/s"


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
    found = []
    for bench in root.glob("**/new/benchmark.json"):
        estimates = bench.with_name("estimates.json")
        if not estimates.exists():
            continue
        meta = json.loads(bench.read_text())
        est = json.loads(estimates.read_text())
        found.append((estimates.stat().st_mtime, meta, est["median"]["point_estimate"]))
    if not found:
        sys.exit(f"no criterion results under {root}: run `cargo bench -p ringcast-bench` first")
    newest = max(t for t, _, _ in found)

    # (group, parameter) -> {implementation: (time ns, per second, text)}
    rows, impls = {}, {}
    for mtime, meta, ns in sorted(found, key=lambda x: x[1]["full_id"]):
        if newest - mtime > STALE_S:
            continue
        throughput = meta.get("throughput") or {}
        amount = next(iter(throughput.values()), 1)
        per_second = amount / (ns * 1e-9)
        group, impl = meta["group_id"], meta.get("function_id") or ""
        param = meta.get("value_str") or ""
        if not impl:  # a bench without a function id: the parameter names it
            impl, param = param, ""
        rows.setdefault((group, param), {})[impl] = (ns, per_second, unit(throughput, per_second))
        impls.setdefault(group, [])
        if impl not in impls[group]:
            impls[group].append(impl)

    for group in impls:
        names = sorted(impls[group], key=lambda n: (n != "ringcast", n))
        others = [n for n in names if n != "ringcast"]
        header = ["input", *names] + ([f"ringcast ÷ {o}" for o in others] if "ringcast" in names else [])
        print(f"\n**{group}**\n")
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for (g, param), cells in rows.items():
            if g != group:
                continue
            line = [param or "-"]
            for n in names:
                line.append(cells[n][2] if n in cells else "-")
            if "ringcast" in names:
                for o in others:
                    if "ringcast" in cells and o in cells:
                        line.append(f"{cells['ringcast'][1] / cells[o][1]:.2f}×")
                    else:
                        line.append("-")
            print("| " + " | ".join(line) + " |")


if __name__ == "__main__":
    main()
