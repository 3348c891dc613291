#!/usr/bin/env python3
"""A/B two or more harness binaries on this noisy VM: alternate them (A B, then B A, ...),
pool every run's value per bench and metric, and print the median with its quartiles.

    python3 benches/scripts/ab.py OLD_BIN,NEW_BIN ROUNDS BENCHES [RUNS] [PREFIX...]

e.g. build the old commit's harness into /tmp/harness-old (see RESULTS.md, "Machine and commands"), then
    python3 benches/scripts/ab.py /tmp/harness-old,target/release/harness 4 pingpong,ring 5
    python3 benches/scripts/ab.py /tmp/harness-old,target/release/harness 4 pingpong 3 taskset -c 0
Each round runs every binary once with `--runs RUNS --only BENCHES --frameworks actor-core`,
so each side gets ROUNDS x RUNS values. PREFIX (e.g. `taskset -c 0`) is put before the binary.
AB_FRAMEWORK=actor-core-group measures that column instead; AB_SUITE=remote runs the remote
suite's benches (e.g. remote_fanin).
"""
import json
import os
import statistics
import subprocess
import sys


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    bins = sys.argv[1].split(",")
    rounds = int(sys.argv[2])
    only = sys.argv[3]
    runs = sys.argv[4] if len(sys.argv) > 4 else "5"
    prefix = sys.argv[5:]
    framework = os.environ.get("AB_FRAMEWORK", "actor-core")
    suite = ["--suite", os.environ["AB_SUITE"]] if "AB_SUITE" in os.environ else []
    data = {b: {} for b in bins}
    for r in range(rounds):
        for b in bins if r % 2 == 0 else bins[::-1]:
            cmd = prefix + [b, *suite, "--runs", runs, "--only", only, "--frameworks", framework]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
            out = done.stdout
            for line in out.splitlines():
                if line.startswith("{"):
                    m = json.loads(line)
                    # The remote suite reports raw quinn beside us: keep our column only.
                    if m["framework"] != framework:
                        continue
                    data[b].setdefault(f"{m['bench']}/{m['metric']}", []).extend(m["runs"])
    for key in sorted(data[bins[0]]):
        cells = []
        for b in bins:
            v = sorted(data[b].get(key, []))
            if not v:
                cells.append(f"{b}: -")
                continue
            n = len(v)
            cells.append(
                f"{b}: {statistics.median(v):.4g} [{v[n // 4]:.4g}, {v[(3 * n) // 4]:.4g}] n={n}"
            )
        print(key, " | ".join(cells))


if __name__ == "__main__":
    main()
