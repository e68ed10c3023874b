#!/usr/bin/env python3
# Turns the JSON of `moelab bench --save FILE [--peer PEER]` into the Markdown tables of kernels/bench/RESULTS.md:
# one for the standard shapes, one for the expert FFN sweep over tokens per expert, one for the dispatch sweep.
# Usage: results_table.py bench.json > tables.md
import json
import sys


def fmt(v, nd=1):
    return "-" if v is None else f"{v:,.{nd}f}"


def table(rows, sweep):
    head = (
        "| stage | shape | T | skew | variant | time µs | p95 µs | GB/s | TFLOP/s | % floor | torch µs | speedup | #wrong |\n"
        "| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    out = [head]
    for r in rows:
        if (r["shape"] == "sweep") != sweep or r.get("group") == "experts sweep":
            continue
        if r.get("error"):  # failed at run time: nothing was measured
            out.append(f"| {r['stage']} | {r['shape']} | {r['tokens']} | {r['skew']} | {r['variant']} | "
                       f"failed: {r['error']} |" + " |" * 7)
            continue
        torch = r.get("torch_ms")
        out.append(
            f"| {r['stage']} | {r['shape']} | {r['tokens']} | {r['skew']} | {r['variant']} | "
            f"{fmt(r['median_ms'] * 1e3)} | {fmt(r['p95_ms'] * 1e3)} | {fmt(r['gbps'], 0)} | "
            f"{fmt(r['tflops'] if r['flops'] else None)} | {fmt(r['pct_floor'])} | "
            f"{fmt(torch * 1e3 if torch else None)} | {fmt(r.get('speedup'), 2) + '×' if torch else '-'} | "
            f"{r['wrong']} |"
        )
    return "\n".join(out)


def experts_table(rows):
    head = (
        "| shape | tokens/expert | T | variant | time µs | roofline µs | bound | % roofline | torch µs | vs torch | SM MHz "
        "| #wrong |\n"
        "| --- | ---: | ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
    )
    out = [head]
    for r in rows:
        if r.get("group") != "experts sweep":
            continue
        if r.get("error"):
            out.append(f"| {r['shape']} | - | {r['tokens']} | {r['variant']} | failed: {r['error']} |" + " |" * 7)
            continue
        torch = r.get("torch_ms")
        out.append(
            f"| {r['shape']} | {r.get('tokens_per_expert', 0):.0f} | {r['tokens']} | {r['variant']} | "
            f"{fmt(r['median_ms'] * 1e3)} | {fmt(r['floor_ms'] * 1e3)} | {r.get('bound', '-')} | "
            f"{fmt(r['pct_floor'])} | {fmt(torch * 1e3 if torch else None)} | "
            f"{fmt(r.get('speedup'), 2) + '×' if torch else '-'} | {fmt(r.get('sm_mhz'), 0)} | {r['wrong']} |"
        )
    return "\n".join(out)


def main():
    j = json.load(open(sys.argv[1]))
    c = j["ceilings"]
    print(f"Device: {j['device']}, {j['date']}; {j['repeats']} timed repeats after {j['warmup']} warm-up.")
    print(
        f"Ceilings measured at the start of the run: device-to-device copy {c['copy_gbps']:.0f} GB/s "
        f"(read + write), read {c.get('read_gbps', 0):.0f} GB/s (16-byte loads), "
        f"bf16 GEMM {c['gemm_tflops']:.0f} TFLOP/s (cuBLAS 8192³"
        + (f", {c['gemm_clocks']}" if c.get("gemm_clocks") else "")
        + ").\n"
    )
    print("Standard shapes:\n")
    print(table(j["rows"], False))
    print("\nExpert FFN sweep (roofline = max(weight bytes / read ceiling, FLOPs / GEMM ceiling)):\n")
    print(experts_table(j["rows"]))
    print("\nDispatch sweep (d=4096, E=64, k=8):\n")
    print(table(j["rows"], True))


if __name__ == "__main__":
    main()
