#!/usr/bin/env python3
# The PyTorch peer of `moelab bench alltoall`: torch.distributed.all_to_all_single over NCCL, one process per GPU,
# on the same sizes per rank, pattern-checked and timed the same way. Writes JSON for `moelab bench alltoall --peer`.
#
#   torchrun --nproc_per_node=G kernels/bench/torch_a2a_peer.py [--min-bytes 256K] [--max-bytes 256M] --out a2a.json
#
# Timing matches moelab's: per iteration, CUDA events around one exchange on every rank, the slowest rank's span;
# median and p95 of --iters after --warmup; a GPU sleep queued first lets the host enqueue every iteration before
# the GPU starts, so the spans hold the exchanges and not Python's enqueue latency.
import os

# The lent multi-GPU machines keep NVLink multicast off (it can take the host's shared GPUs out of service).
os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
os.environ.setdefault("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1")

import argparse
import json
import math
import sys
import time

import torch
import torch.distributed as dist


def parse_bytes(text):
    units = {"": 1, "B": 1, "K": 1 << 10, "KiB": 1 << 10, "M": 1 << 20, "MiB": 1 << 20, "G": 1 << 30, "GiB": 1 << 30}
    num = text.rstrip("BKMGi")
    unit = text[len(num):]
    if unit not in units or not num:
        raise SystemExit(f"torch_a2a_peer: bad size '{text}': a number with an optional K, M or G suffix")
    return int(float(num) * units[unit])


def pattern(src, dst, n, dev):
    """The int32 words rank src sends rank dst: a hash of (src, dst, index), exact in int64 arithmetic."""
    i = torch.arange(n, device=dev, dtype=torch.int64)
    return ((i * 2654435761 + src * 1000003 + dst * 7919) % 2147483647).to(torch.int32)


def percentile(v, q):
    v = sorted(v)
    if q == 0.5:
        return v[len(v) // 2]
    return v[min(len(v) - 1, max(0, math.ceil(q * len(v)) - 1))]


def cycles_per_second(dev):
    """torch.cuda._sleep counts clock cycles: calibrate them against CUDA events once."""
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda._sleep(1000)
    s.record()
    torch.cuda._sleep(20_000_000)
    e.record()
    torch.cuda.synchronize()
    return 20_000_000 / (s.elapsed_time(e) * 1e-3)


def main():
    ap = argparse.ArgumentParser(description="PyTorch all_to_all_single peer of moelab bench alltoall")
    ap.add_argument("--min-bytes", default="256K")
    ap.add_argument("--max-bytes", default="256M")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--out", default="-")
    a = ap.parse_args()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local)
    dev = torch.device("cuda", local)
    dist.init_process_group("nccl", device_id=dev)
    rank, G = dist.get_rank(), dist.get_world_size()
    log = (lambda m: print(f"torch_a2a_peer: {m}", file=sys.stderr, flush=True)) if rank == 0 else (lambda m: None)
    lo, hi = parse_bytes(a.min_bytes), parse_bytes(a.max_bytes)
    sizes = []
    b = lo
    while b <= hi:
        sizes.append(b)
        b *= 2
    hz = cycles_per_second(dev)
    rows = []
    t0 = time.time()
    for size in sizes:
        per_peer = max(size // (4 * G), 1)
        n = per_peer * G
        send = torch.cat([pattern(rank, d, per_peer, dev) for d in range(G)])
        want = torch.cat([pattern(s, rank, per_peer, dev) for s in range(G)])
        recv = torch.full((n,), -1, dtype=torch.int32, device=dev)
        dist.all_to_all_single(recv, send)  # checked before anything is timed
        wrong = int((recv != want).sum().item())
        torch.cuda.synchronize()
        w0 = time.perf_counter()
        for _ in range(a.warmup):
            dist.all_to_all_single(recv, send)
        host_s = (time.perf_counter() - w0) / a.warmup if a.warmup else 100e-6
        torch.cuda.synchronize()
        recv.fill_(-1)
        ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(a.iters)]
        torch.cuda._sleep(int(hz * min(2.0, max(2e-3, 2 * host_s * a.iters + 2e-3))))
        for s, e in ev:
            s.record()
            dist.all_to_all_single(recv, send)
            e.record()
        torch.cuda.synchronize()
        wrong += int((recv != want).sum().item())
        ms = torch.tensor([s.elapsed_time(e) for s, e in ev], device=dev, dtype=torch.float64)
        dist.all_reduce(ms, op=dist.ReduceOp.MAX)  # an exchange ends with its slowest rank
        bad = torch.tensor([wrong], device=dev, dtype=torch.int64)
        dist.all_reduce(bad)
        ms = ms.tolist()
        med = percentile(ms, 0.5)
        algbw = n * 4 / (med * 1e-3) / 1e9
        rows.append(dict(bytes_per_rank=n * 4, count=n, median_ms=med, p95_ms=percentile(ms, 0.95), min_ms=min(ms),
                         algbw=algbw, busbw=algbw * (G - 1) / G, wrong=int(bad.item())))
        r = rows[-1]
        log(f"{r['bytes_per_rank']:>12d} B  {r['median_ms'] * 1e3:9.1f} us  p95 {r['p95_ms'] * 1e3:9.1f} us  "
            f"busbw {r['busbw']:7.1f} GB/s  wrong {r['wrong']}")
    if rank == 0:
        v = torch.cuda.nccl.version()
        out = dict(device=torch.cuda.get_device_name(dev), torch=torch.__version__,
                   nccl=".".join(map(str, v)) if isinstance(v, tuple) else str(v), world_size=G, warmup=a.warmup,
                   iters=a.iters, seconds=time.time() - t0, rows=rows)
        text = json.dumps(out, indent=2)
        if a.out == "-":
            print(text)
        else:
            with open(a.out, "w") as f:
                f.write(text + "\n")
    dist.barrier()
    dist.destroy_process_group()
    return 1 if any(r["wrong"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
