#!/usr/bin/env python3
"""Summarises an expert-FFN item trace (MOELAB_TRACE_ITEMS=<file> moelab bench experts --experts-impl wgmma ...; also
decode and mid, whose two launches' items are in one file, gate/up first).

Every item of the last call is one CSV row: the SM that ran it, when its producer took it, when its h was ready
(down items; the take for gate/up), when its first stage had landed in the consumers, when its MMAs were done and
when its epilogue was done (%globaltimer, ns); for wgmma's second consumer warpgroup, when its MMAs and its epilogue
were done (mma2, end2; 0 with one warpgroup). decode and mid have no producer: an item is taken when its loads
start (a block's first item: when the block started), and for decode `first` is that start too. Prints where the
call's time went: the span, each kind's durations and waits (and how far apart the two warpgroups end), how many
SMs were busy and how fast weights streamed in each twentieth of the span (each item's weight bytes spread evenly
over its first-stage-to-end interval), the start (when each SM took its first item and when that item's first stage
landed) and the tail (the spread of each SM's last end). The span leaves out the call's launch, the kernels' prologue
and their end (about 8 µs of wgmma's classroom call at 64 tokens per expert: kernels/bench/RESULTS.md).

    python3 kernels/bench/trace_items.py trace.csv [--read-gbps 4550] [--bins 20]
"""
import argparse
import csv
import statistics
import sys


def load(path):
    header = {}
    rows = []
    with open(path) as f:
        first = f.readline()
        if not first.startswith("#"):
            sys.exit(f"{path}: not a MOELAB_TRACE_ITEMS file (no '# wgmma ...' header)")
        header["kernel"] = first[1:].split()[0]
        for kv in first[1:].split()[1:]:
            k, _, v = kv.partition("=")
            header[k] = int(v)
        for r in csv.DictReader(f):
            rows.append({k: int(v) for k, v in r.items()})
    if not rows:
        sys.exit(f"{path}: no items")
    return header, rows


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace")
    ap.add_argument("--read-gbps", type=float, default=0.0, help="the read ceiling, for %% of it per bin")
    ap.add_argument("--bins", type=int, default=20)
    a = ap.parse_args()
    h, rows = load(a.trace)
    t0 = min(r["take"] for r in rows)
    t1 = max(r["end"] for r in rows)
    span = (t1 - t0) / 1e3
    sms = sorted({r["sm"] for r in rows})
    bn, d, f = h["bn"], h["hidden"], h["ffn"]
    # a full tile's weights: bn rows of w1 (gate + up) or bn_down (bn where not given) rows of w2
    wbytes = {1: bn * d * 2, 0: h.get("bn_down", bn) * f * 2}
    print(f"{h['kernel']} trace: {h}")
    print(f"span {span:.1f} us from the first take to the last end, {len(rows)} items on {len(sms)} SMs")
    for g, name in ((1, "gate/up"), (0, "down")):
        it = [r for r in rows if r["gated"] == g]
        if not it:
            continue
        dur = [(r["end"] - r["first"]) / 1e3 for r in it]
        land = [(r["first"] - r["ready"]) / 1e3 for r in it]
        hw = [(r["ready"] - r["take"]) / 1e3 for r in it]
        epi = [(r["end"] - r["mma"]) / 1e3 for r in it if r.get("mma")]
        print(f"  {name:8s} {len(it):5d} items of {wbytes[g] / 1024:.0f} KB: first stage to end mean {statistics.mean(dur):.2f}"
              f" p50 {pct(dur, .5):.2f} max {max(dur):.2f} us; ready to first stage mean {statistics.mean(land):.2f} us"
              + (f"; h wait mean {statistics.mean(hw):.2f} max {max(hw):.2f} us" if g == 0 else "")
              + (f"; epilogue mean {statistics.mean(epi):.2f} max {max(epi):.2f} us" if epi else "")
              + f"; ends from {(min(r['end'] for r in it) - t0) / 1e3:.1f} to {(max(r['end'] for r in it) - t0) / 1e3:.1f} us")
        # two consumer warpgroups: how far apart they end their MMAs, and how long both are in the epilogue
        two = [r for r in it if r.get("mma2") and r.get("end2") and r.get("mma")]
        if two:
            lag = [(r["mma2"] - r["mma"]) / 1e3 for r in two]
            idle = [max(0, min(r["end"], r["end2"]) - max(r["mma"], r["mma2"])) / 1e3 for r in two]
            print(f"           second warpgroup's MMAs end after the first's: mean {statistics.mean(lag):.2f} p10"
                  f" {pct(lag, .1):.2f} p50 {pct(lag, .5):.2f} p90 {pct(lag, .9):.2f} us; both in the epilogue mean"
                  f" {statistics.mean(idle):.2f} us")
    # the start: when each SM took its first item, and when that item's first stage landed
    firsts = {}
    for r in rows:
        if r["sm"] not in firsts or r["take"] < firsts[r["sm"]]["take"]:
            firsts[r["sm"]] = r
    takes = [(r["take"] - t0) / 1e3 for r in firsts.values()]
    lands = [(r["first"] - t0) / 1e3 for r in firsts.values()]
    print(f"each SM's first take: p50 {pct(takes, .5):.2f} max {max(takes):.2f} us; its first stage landed: min"
          f" {min(lands):.2f} p50 {pct(lands, .5):.2f} max {max(lands):.2f} us")
    last = {}
    for r in rows:
        last[r["sm"]] = max(last.get(r["sm"], 0), r["end"])
    ends = [(v - t0) / 1e3 for v in last.values()]
    print(f"each SM's last end: min {min(ends):.1f} p10 {pct(ends, .1):.1f} p50 {pct(ends, .5):.1f} max {max(ends):.1f} us"
          f" (tail after the median SM: {max(ends) - pct(ends, .5):.1f} us)")
    nb = a.bins
    w = (t1 - t0) / nb
    busy = [0.0] * nb
    gbytes = [0.0] * nb
    for r in rows:
        s, e = r["first"], max(r["end"], r["first"] + 1)
        per_ns = wbytes[r["gated"]] / (e - s)
        for b in range(int((s - t0) // w), min(nb, int((e - t0) // w) + 1)):
            lo, hi = max(s, t0 + b * w), min(e, t0 + (b + 1) * w)
            if hi > lo:
                busy[b] += (hi - lo) / w
                gbytes[b] += (hi - lo) * per_ns
    # An item's weight bytes are spread evenly from its first stage's landing to its end: the bytes in flight before a
    # landing count after it, so the first bins read low, and a bin can read above the ceiling.
    print("per bin, each item's weight bytes spread from its first landing to its end (the first bins read low)")
    print(f"{'bin (us)':>16s} {'busy SMs':>9s} {'weights GB/s':>13s}" + (" % of read" if a.read_gbps else ""))
    for b in range(nb):
        rate = gbytes[b] / w  # bytes per ns = GB/s
        bar = "#" * int(round(40 * busy[b] / max(1, len(sms))))
        extra = f" {100 * rate / a.read_gbps:9.1f}" if a.read_gbps else ""
        print(f"{b * w / 1e3:7.1f}-{(b + 1) * w / 1e3:7.1f} {busy[b]:9.1f} {rate:13.0f}{extra}  {bar}")
    total = sum(wbytes[r["gated"]] for r in rows)
    print(f"weights {total / 1e6:.1f} MB in {span:.1f} us: {total / (t1 - t0):.0f} GB/s over the span")


if __name__ == "__main__":
    main()
