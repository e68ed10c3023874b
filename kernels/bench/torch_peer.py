#!/usr/bin/env python3
# The PyTorch peer of `moelab bench`: each MoE stage written the way a PyTorch user would, on the same shapes,
# timed with CUDA events (median and p95 after warm-up, inputs rotated past L2). Writes JSON for `bench --peer`.
import argparse
import json
import math
import sys
import time

import torch
import torch.nn.functional as F

SHAPES = {
    "classroom": dict(tokens=4096, hidden=1024, experts=16, top_k=2, ffn=2816),
    "S1": dict(tokens=16384, hidden=4096, experts=64, top_k=8, ffn=1408),
    "S2": dict(tokens=4096, hidden=4096, experts=8, top_k=2, ffn=14336),
    "S3": dict(tokens=16384, hidden=7168, experts=256, top_k=8, ffn=2048),
}
L2_BYTES = 50e6


def time_fn(fns, warmup, reps):
    """Median and p95 in ms of fns[i % len(fns)]() over reps runs, each bracketed by CUDA events."""
    for i in range(warmup):
        fns[i % len(fns)]()
    ev = [torch.cuda.Event(enable_timing=True) for _ in range(reps + 1)]
    ev[0].record()
    for i in range(reps):
        fns[(warmup + i) % len(fns)]()
        ev[i + 1].record()
    torch.cuda.synchronize()
    ms = sorted(ev[i].elapsed_time(ev[i + 1]) for i in range(reps))
    return ms[len(ms) // 2], ms[min(len(ms) - 1, math.ceil(0.95 * len(ms)) - 1)]


def sets_for(nbytes):
    return max(2, min(32, math.ceil(3 * L2_BYTES / max(nbytes, 1))))


def log_popularity(skew, E):
    p = torch.ones(E, dtype=torch.float64)
    if skew.startswith("zipf:"):
        p = 1.0 / torch.arange(1, E + 1, dtype=torch.float64) ** float(skew[5:])
    elif skew.startswith("hot:"):
        p[0] = float(skew[4:])
    return (p / p.sum()).log().float()


def routing(T, E, k, skew, dev):
    """Popularity routing like moelab's: top-k of log p + Gumbel noise, softmax weights renormalised."""
    logits = log_popularity(skew, E).to(dev) - torch.empty(T, E, device=dev).exponential_().log()
    probs = torch.softmax(logits, dim=-1)
    w, ids = torch.topk(probs, k, dim=-1)
    return ids, (w / w.sum(-1, keepdim=True))


def route_fn(x, wg, logp, k):
    logits = torch.mm(x, wg.t()).float() + logp
    probs = torch.softmax(logits, dim=-1)
    w, ids = torch.topk(probs, k, dim=-1)
    return ids, w / w.sum(-1, keepdim=True)


def permute_fn(x, ids, k):
    order = torch.argsort(ids.flatten(), stable=True)
    return x.index_select(0, order // k), order


def combine_fn(yp, order, w, T, k):
    out = torch.zeros(T, yp.shape[1], device=yp.device, dtype=torch.float32)
    out.index_add_(0, order // k, yp.float() * w.flatten()[order].unsqueeze(1))
    return out.to(torch.bfloat16)


def inverse_map(order):
    inv = torch.empty_like(order)
    inv[order] = torch.arange(order.numel(), device=order.device)
    return inv


def combine_gather_fn(yp, inv, w, T, k):
    """The gather by the inverse map and a weighted sum over k: no scatter, no atomics."""
    return (yp[inv].view(T, k, -1).float() * w.view(T, k, 1)).sum(1).to(torch.bfloat16)


def experts_grouped(xp, w1t, w2t, offs, F_):
    h1 = torch._grouped_mm(xp, w1t, offs=offs)
    h = F.silu(h1[:, :F_]) * h1[:, F_:]
    return torch._grouped_mm(h, w2t, offs=offs)


def experts_loop(xp, w1, w2, counts, F_):
    y = torch.empty(xp.shape[0], w2.shape[1], device=xp.device, dtype=xp.dtype)
    start = 0
    for e, n in enumerate(counts):
        if n:
            h1 = F.linear(xp[start : start + n], w1[e])
            y[start : start + n] = F.linear(F.silu(h1[:, :F_]) * h1[:, F_:], w2[e])
        start += n
    return y


def row(stage, shape, s, skew, variant, t):
    return dict(stage=stage, shape=shape, skew=skew, variant=variant, median_ms=t[0], p95_ms=t[1], **s)


def bench_shape(name, s, stages, warmup, reps, dev, rows, log):
    T, d, E, k, F_ = s["tokens"], s["hidden"], s["experts"], s["top_k"], s["ffn"]
    bf = torch.bfloat16
    nsets = sets_for(T * d * 2 * (1 + k))
    xs = [torch.rand(T, d, device=dev, dtype=bf) * 2 - 1 for _ in range(nsets)]
    ids, w = routing(T, E, k, "uniform", dev)
    if "route" in stages:
        log(f"route {name}")
        wg = (torch.rand(E, d, device=dev, dtype=bf) * 2 - 1) * math.sqrt(3 / d)
        logp = log_popularity("uniform", E).to(dev)
        t = time_fn([lambda x=x: route_fn(x, wg, logp, k) for x in xs], warmup, reps)
        rows.append(row("route", name, s, "uniform", "mm+softmax+topk", t))
    if "dispatch" in stages:
        log(f"dispatch {name}")
        t = time_fn([lambda x=x: permute_fn(x, ids, k) for x in xs], warmup, reps)
        rows.append(row("dispatch", name, s, "uniform", "argsort+index_select", t))
    xp, order = permute_fn(xs[0], ids, k)
    counts = torch.bincount(ids.flatten(), minlength=E)
    offs = counts.cumsum(0).to(torch.int32)
    if "combine" in stages:
        log(f"combine {name}")
        ysets = [torch.rand_like(xp) for _ in range(sets_for(xp.numel() * 2))]
        t = time_fn([lambda y=y: combine_fn(y, order, w, T, k) for y in ysets], warmup, reps)
        rows.append(row("combine", name, s, "uniform", "index_add_", t))
        inv = inverse_map(order)
        t = time_fn([lambda y=y: combine_gather_fn(y, inv, w, T, k) for y in ysets], warmup, reps)
        rows.append(row("combine", name, s, "uniform", "gather+sum", t))
        del ysets, inv
    if "experts" in stages or "layer" in stages:
        w1 = (torch.rand(E, 2 * F_, d, device=dev, dtype=bf) * 2 - 1) * math.sqrt(3 / d)
        w2 = (torch.rand(E, d, F_, device=dev, dtype=bf) * 2 - 1) * math.sqrt(3 / F_)
        w1t, w2t = w1.transpose(-2, -1), w2.transpose(-2, -1)
        grouped_ok = True
        if "experts" in stages:
            log(f"experts {name}")
            try:
                t = time_fn([lambda: experts_grouped(xp, w1t, w2t, offs, F_)], min(warmup, 3), reps)
                rows.append(row("experts", name, s, "uniform", "_grouped_mm", t))
            except Exception as e:  # an older torch, or a layout it refuses
                grouped_ok = False
                rows.append(row("experts", name, s, "uniform", "_grouped_mm", (None, None)) | {"error": str(e)})
            hc = counts.tolist()
            t = time_fn([lambda: experts_loop(xp, w1, w2, hc, F_)], min(warmup, 3), reps)
            rows.append(row("experts", name, s, "uniform", "loop", t))
        if "layer" in stages:
            log(f"layer {name}")
            wg = (torch.rand(E, d, device=dev, dtype=bf) * 2 - 1) * math.sqrt(3 / d)
            logp = log_popularity("uniform", E).to(dev)

            def layer(x, gather):
                i, wt = route_fn(x, wg, logp, k)
                p, o = permute_fn(x, i, k)
                c = torch.bincount(i.flatten(), minlength=E)
                if grouped_ok:
                    y = experts_grouped(p, w1t, w2t, c.cumsum(0).to(torch.int32), F_)
                else:
                    y = experts_loop(p, w1, w2, c.tolist(), F_)
                if gather:
                    return combine_gather_fn(y, inverse_map(o), wt, T, k)
                return combine_fn(y, o, wt, T, k)

            t = time_fn([lambda x=x: layer(x, False) for x in xs[:2]], min(warmup, 3), reps)
            rows.append(row("layer", name, s, "gate", "composition", t))
            t = time_fn([lambda x=x: layer(x, True) for x in xs[:2]], min(warmup, 3), reps)
            rows.append(row("layer", name, s, "gate", "composition+gather", t))
        del w1, w2, w1t, w2t
    del xs
    torch.cuda.empty_cache()


def bench_sweep(warmup, reps, dev, rows, log):
    d, E, k, F_ = 4096, 64, 8, 1408
    for T in (256, 4096, 16384):
        for skew in ("uniform", "zipf:1.2", "hot:20"):
            log(f"dispatch sweep T={T} {skew}")
            s = dict(tokens=T, hidden=d, experts=E, top_k=k, ffn=F_)
            xs = [torch.rand(T, d, device=dev, dtype=torch.bfloat16) for _ in range(sets_for(T * d * 2 * (1 + k)))]
            ids, _ = routing(T, E, k, skew, dev)
            t = time_fn([lambda x=x: permute_fn(x, ids, k) for x in xs], warmup, reps)
            rows.append(row("dispatch", "sweep", s, skew, "argsort+index_select", t))
            del xs


def bench_experts_sweep(warmup, reps, dev, rows, log):
    """torch._grouped_mm with the same gated FFN over tokens per expert, as `moelab bench experts --sweep`."""
    bf = torch.bfloat16
    for name in ("classroom", "S1", "S3"):
        s0 = SHAPES[name]
        d, E, k, F_ = s0["hidden"], s0["experts"], s0["top_k"], s0["ffn"]
        w1 = (torch.rand(E, 2 * F_, d, device=dev, dtype=bf) * 2 - 1) * math.sqrt(3 / d)
        w2 = (torch.rand(E, d, F_, device=dev, dtype=bf) * 2 - 1) * math.sqrt(3 / F_)
        w1t, w2t = w1.transpose(-2, -1), w2.transpose(-2, -1)
        for tpe in (1, 8, 64, 512, 4096):
            T = tpe * E // k
            s = dict(s0, tokens=T)
            log(f"experts sweep {name} tokens/expert={tpe}")
            x = torch.rand(T, d, device=dev, dtype=bf) * 2 - 1
            ids, _ = routing(T, E, k, "uniform", dev)
            xp, _ = permute_fn(x, ids, k)
            del x
            offs = torch.bincount(ids.flatten(), minlength=E).cumsum(0).to(torch.int32)
            fn = lambda: experts_grouped(xp, w1t, w2t, offs, F_)
            try:
                fn()
                torch.cuda.synchronize()
                t0 = time.time()
                fn()
                torch.cuda.synchronize()
                probe_ms = (time.time() - t0) * 1e3
                n = max(5, min(reps, int(500 / max(probe_ms, 1e-3))))
                t = time_fn([fn], min(warmup, 3), n)
                rows.append(row("experts", name, s, "uniform", "_grouped_mm", t) | dict(group="experts sweep"))
            except Exception as e:
                rows.append(row("experts", name, s, "uniform", "_grouped_mm", (None, None)) | {"error": str(e)})
            del xp, ids, offs
            torch.cuda.empty_cache()
        del w1, w2, w1t, w2t
        torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shapes", default="classroom,S1,S2,S3")
    ap.add_argument("--stages", default="route,dispatch,experts,combine,layer")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--out", default="-")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("torch_peer: no CUDA device", file=sys.stderr)
        return 1
    dev = torch.device("cuda")
    torch.manual_seed(1)
    log = lambda m: print(f"torch_peer: {m}", file=sys.stderr, flush=True)
    rows = []
    stages = a.stages.split(",")
    t0 = time.time()
    for name in a.shapes.split(","):
        bench_shape(name, SHAPES[name], stages, a.warmup, a.repeats, dev, rows, log)
    if a.sweep:
        if "dispatch" in stages:
            bench_sweep(a.warmup, a.repeats, dev, rows, log)
        if "experts" in stages:
            bench_experts_sweep(a.warmup, a.repeats, dev, rows, log)
    out = dict(device=torch.cuda.get_device_name(), torch=torch.__version__, seconds=time.time() - t0, rows=rows)
    text = json.dumps(out, indent=2)
    if a.out == "-":
        print(text)
    else:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    for r in rows:
        med = "failed" if r["median_ms"] is None else f"{r['median_ms'] * 1e3:10.1f} us"
        log(f"{r['stage']:9s} {r['shape']:5s} T={r['tokens']:<6d} {r['skew']:9s} {r['variant']:22s} {med}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
