#!/usr/bin/env python3
"""Summarises Nsight Compute's warp-stall samples by instruction, from a report's source page:

    ncu --clock-control none --kernel-name regex:wgmma_ffn_kernel --launch-skip 3 --launch-count 1 \\
        --section SourceCounters --section WarpStateStats -o rep moelab bench experts ... --no-check
    ncu -i rep.ncu-rep --page source --csv --print-source sass > src.csv
    python3 kernels/bench/ncu_stalls.py src.csv [--top 25] [--around PATTERN]

Prints the samples by stall reason over the whole kernel, the instructions that hold the most samples (with their
two main reasons and how often they ran), and, with --around, the instructions near the first one whose text
matches PATTERN (for example HGMMA: the consumers' k step). The seventeenth session's reading of the 128 x 256
kernel (kernels/bench/RESULTS.md) came from this.
"""
import argparse
import csv
import re
import sys

SAMPLES = "Warp Stall Sampling (All Samples)"


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    # The first row names the kernel; the second is the header.
    head = next((i for i, r in enumerate(rows) if SAMPLES in r), None)
    if head is None:
        sys.exit(f"{path}: no '{SAMPLES}' column (was the SourceCounters section collected, and --page source used?)")
    names = rows[head]
    col = {n: i for i, n in enumerate(names)}
    reasons = [n for n in names if n.startswith("stall_") and "Not Issued" not in n]
    return rows[:head], [r for r in rows[head + 1 :] if len(r) == len(names)], col, reasons


def number(text):
    try:
        return int(float(text.replace(",", "")))
    except ValueError:
        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv")
    ap.add_argument("--top", type=int, default=25, help="instructions to list (default 25)")
    ap.add_argument("--around", help="also list the instructions near the first one matching this regex")
    ap.add_argument("--width", type=int, default=40, help="instructions before and after --around's match")
    a = ap.parse_args()
    pre, rows, col, reasons = load(a.csv)
    for r in pre:
        if r:
            print(" ".join(r)[:200])
    samples = [number(r[col[SAMPLES]]) for r in rows]
    total = sum(samples) or 1
    print(f"{len(rows)} instructions, {total} samples")
    by_reason = {s: sum(number(r[col[s]]) for r in rows) for s in reasons}
    for s, v in sorted(by_reason.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {s[6:]:22s} {v:8d} {100 * v / total:5.1f}%")

    def line(i):
        r = rows[i]
        main_two = sorted(((number(r[col[s]]), s[6:]) for s in reasons), reverse=True)[:2]
        why = " ".join(f"{name}:{n}" for n, name in main_two if n)
        ran = r[col["Instructions Executed"]] if "Instructions Executed" in col else ""
        text = r[col["Source"]].strip()[:64]
        return f"{i:6d} {samples[i]:7d} {100 * samples[i] / total:5.1f}%  {text:64s} {why} ran={ran}"

    print(f"\nthe {a.top} instructions with the most samples:")
    for i in sorted(range(len(rows)), key=lambda i: -samples[i])[: a.top]:
        print(line(i))
    if a.around:
        pat = re.compile(a.around)
        hit = next((i for i, r in enumerate(rows) if pat.search(r[col["Source"]])), None)
        if hit is None:
            sys.exit(f"no instruction matches {a.around!r}")
        lo, hi = max(0, hit - a.width), min(len(rows), hit + a.width)
        print(f"\naround instruction {hit} ({sum(samples[lo:hi])} samples in {lo}..{hi - 1}):")
        for i in range(lo, hi):
            print(line(i))


if __name__ == "__main__":
    main()
