#!/usr/bin/env python3
"""Where the spawning thread's time goes in the spawn workload, from a `perf record -g` profile.

    perf record -o spawn.data -F 9999 -g ./target/release/harness --only spawn --runs 5 \
        --frameworks actor-core-group
    perf script -i spawn.data -F comm,tid,time,ip,sym --no-inline > spawn.txt
    python3 benches/scripts/spawn_profile.py spawn.txt [MARKER]

The spawn phases are the stretches of samples with MARKER (default `spawn_actor`; for actix,
`Actor>::start`) in a function name on the stack (gaps of more than
50 ms end one: the workload then idles for 200 ms before it stops the actors); within them, only
the threads with more than 100 samples (the spawning loop's) are counted. Each sample is put in
one class: in the kernel under `mprotect`, in the kernel under a page fault, elsewhere in the
kernel, in glibc's allocator (`malloc/free`), in `memcpy`, or the user function it was in.
"""
import collections
import sys

# glibc's allocator, with the user-side stubs of the system calls it makes to grow its heaps.
ALLOC = ("malloc", "free", "_int_", "sysmalloc", "unlink_chunk", "alloc_perturb", "consolidate",
         "calloc", "memalign", "realloc", "__brk", "__mprotect", "__rdl", "__rust_alloc",
         "__rust_dealloc")


def samples(path):
    for block in open(path).read().split("\n\n"):
        lines = block.strip().split("\n")
        if len(lines) < 2:
            continue
        head = lines[0].split()
        frames = []
        for line in lines[1:]:
            parts = line.strip().split(None, 1)
            frames.append((parts[0], parts[1] if len(parts) > 1 else "?"))
        yield float(head[-1].rstrip(":")), head[-2], frames


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    marker = sys.argv[2] if len(sys.argv) == 3 else "spawn_actor"
    all_samples = list(samples(sys.argv[1]))
    marks = sorted(t for t, _, f in all_samples if any(marker in s for _, s in f))
    if not marks:
        sys.exit(f"no sample has {marker} on its stack")
    phases, start, last = [], marks[0], marks[0]
    for t in marks[1:]:
        if t - last > 0.05:
            phases.append((start, last))
            start = t
        last = t
    phases.append((start, last))
    inside = [s for s in all_samples if any(a <= s[0] <= b for a, b in phases)]
    per_thread = collections.Counter(tid for _, tid, _ in inside)
    spawning = {tid for tid, n in per_thread.items() if n > 100}
    inside = [s for s in inside if s[1] in spawning]
    classes = collections.Counter()
    for _, _, frames in inside:
        names = " ".join(s for _, s in frames)
        if frames[0][0].startswith("ffffffff"):
            if "mprotect" in names:
                c = "kernel: mprotect"
            elif "page_fault" in names:
                c = "kernel: page fault"
            else:
                c = "kernel: other"
        else:
            leaf = frames[0][1]
            if any(k in leaf for k in ALLOC):
                c = "user: malloc/free"
            elif "memmove" in leaf or "memcpy" in leaf:
                c = "user: memcpy"
            else:
                c = "user: " + leaf[:90]
        classes[c] += 1
    print(f"{len(phases)} spawn phases, {len(inside)} samples of the spawning threads")
    for name, n in classes.most_common(20):
        print(f"{100 * n / len(inside):5.1f}%  {name}")


if __name__ == "__main__":
    main()
