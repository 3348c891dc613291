#!/usr/bin/env python3
"""Pool the runs of several harness invocations (their JSON-lines output) and print the summary
table of the pooled medians, in the harness's own format.

    python3 benches/scripts/pool.py RUN1.jsonl RUN2.jsonl ...

On this VM two invocations of the same command can differ by 20% on a row (the host's phase); a
table of the median over both invocations' runs says more than either one. Cells: value (ratio to
the best peer among ractor, kameo and actix; above 1.00x is better than every peer), as the
harness prints them (`benches/src/report.rs`).
"""
import json
import statistics
import sys

ORDER = ["pingpong", "counting", "fanout", "fanin", "ring", "ask_latency", "spawn", "big",
         "bounded", "priority_latency", "timer_jitter"]
COLUMNS = ["actor-core", "actor-core-group", "ractor", "kameo", "actix", "tokio-mpsc",
           "crossbeam"]
PEERS = {"ractor", "kameo", "actix"}


def human(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e4:
        return f"{v / 1e3:.1f}k"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.2f}"


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    runs, units = {}, {}
    for path in sys.argv[1:]:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                m = json.loads(line)
                key = (m["bench"], m["metric"])
                runs.setdefault(key, {}).setdefault(m["framework"], []).extend(m["runs"])
                units[key] = m["unit"]
    present = [c for c in COLUMNS if any(c in cells for cells in runs.values())]
    counts = sorted({len(v) for cells in runs.values() for v in cells.values()})
    print(f"Pooled medians of {'/'.join(map(str, counts))} runs from {len(sys.argv) - 1} "
          "invocation(s)\n")
    print("| bench | metric | " + " | ".join(present) + " |")
    print("|---|---|" + "---:|" * len(present))
    order = lambda k: (ORDER.index(k[0]) if k[0] in ORDER else 99, k[0], k[1])
    for key in sorted(runs, key=order):
        bench, metric = key
        cells = {fw: statistics.median(v) for fw, v in runs[key].items()}
        higher = metric.endswith("_per_s")
        peers = [v for fw, v in cells.items() if fw in PEERS and v > 0]
        best = (max(peers) if higher else min(peers)) if peers else None
        row = f"| {bench} | {metric} ({units[key]}) |"
        for fw in present:
            if fw not in cells:
                row += " - |"
            elif best:
                ratio = cells[fw] / best if higher else best / cells[fw]
                row += f" {human(cells[fw])} ({ratio:.2f}x) |"
            else:
                row += f" {human(cells[fw])} |"
        print(row)


if __name__ == "__main__":
    main()
