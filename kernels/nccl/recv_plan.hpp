// The receive side's plan of the expert-parallel layer, from the counts a rank received: where each arriving row
// goes for the local experts and back. Host-only and CUDA-free, so a CPU test can check it against the reference.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace moe::nccl {

// First global token of rank g: the smallest t with comm::rank_of_token(t) = floor(t·G/T) >= g, i.e. ceil(g·T/G).
inline std::int64_t token_begin(int g, std::int64_t T, int G) { return (std::int64_t(g) * T + G - 1) / G; }

// Host plan of one rank's receive side, from the counts c[s][el] it received: rows arrive source-major (R layout),
// the experts want them local-expert-major with each expert's segment padded to `align` rows (P layout).
struct RecvPlan {
    std::vector<std::int32_t> fwd_dst, fwd_src;         // segments tiling P (src_start −1: padding)
    std::vector<std::int32_t> bwd_dst, bwd_src;         // segments tiling R, read from P
    std::vector<std::int32_t> loc_counts, loc_offsets;  // [El], [El + 1] of P
    std::int64_t R = 0, P = 0;
};

inline RecvPlan plan_receive(const std::int32_t* c, int G, int El, int align) {
    RecvPlan p;
    std::vector<std::int64_t> roff(std::size_t(G) * El), pos(std::size_t(G) * El);
    for (int s = 0; s < G; ++s)
        for (int el = 0; el < El; ++el) roff[std::size_t(s) * El + el] = p.R, p.R += c[s * El + el];
    p.loc_counts.assign(El, 0);
    p.loc_offsets.assign(El + 1, 0);
    for (int el = 0; el < El; ++el) {
        std::int64_t cur = p.P;
        p.loc_offsets[el] = std::int32_t(p.P);
        for (int s = 0; s < G; ++s) {
            const std::int32_t n = c[s * El + el];
            pos[std::size_t(s) * El + el] = cur;
            if (n > 0)
                p.fwd_dst.push_back(std::int32_t(cur)),
                    p.fwd_src.push_back(std::int32_t(roff[std::size_t(s) * El + el]));
            cur += n;
        }
        p.loc_counts[el] = std::int32_t(cur - p.P);
        const std::int64_t padded = (cur - p.P + align - 1) / align * align;
        if (p.P + padded > cur) p.fwd_dst.push_back(std::int32_t(cur)), p.fwd_src.push_back(-1);
        p.P += padded;
    }
    p.loc_offsets[El] = std::int32_t(p.P);
    p.fwd_dst.push_back(std::int32_t(p.P));
    for (int s = 0; s < G; ++s)
        for (int el = 0; el < El; ++el)
            if (c[s * El + el] > 0)
                p.bwd_dst.push_back(std::int32_t(roff[std::size_t(s) * El + el])),
                    p.bwd_src.push_back(std::int32_t(pos[std::size_t(s) * El + el]));
    p.bwd_dst.push_back(std::int32_t(p.R));
    return p;
}

// Chunk i of K carries the local experts [chunk_begin(i), chunk_begin(i + 1)): the exchanges and the expert FFNs
// go chunk by chunk, so chunk i + 1 can move while chunk i's experts compute. Each expert sees the same rows in the
// same order as without chunks, so the outputs are the same bits.
inline int chunk_begin(int i, int El, int K) { return int(std::int64_t(i) * El / K); }

struct ChunkPlan {
    int e0 = 0, e1 = 0;                   // local experts of the chunk
    RecvPlan recv;                        // the chunk's receive plan, rows relative to r_base and p_base
    std::int64_t r_base = 0, p_base = 0;  // the chunk's first row in the received (R) and by-expert (P) buffers
    std::vector<std::int64_t> send_off, send_rows;  // [G] rows for each peer: offset in this rank's packed rows
    std::vector<std::int64_t> recv_off, recv_rows;  // [G] rows from each peer: offset in R (absolute)
};

// The plans of one rank g from its own kept rows per expert own[E] (its packed send rows are expert-major over all
// E experts, align 1) and the counts it received, got[s·El + el] (rows source s sends for local expert el).
// Received rows are chunk-major, then source-major inside a chunk: R = [chunk 0: src 0, src 1, …][chunk 1: …].
inline std::vector<ChunkPlan> plan_chunks(const std::int32_t* own, const std::int32_t* got, int G, int El, int K,
                                          int align) {
    const int E = G * El;
    std::vector<std::int64_t> prefix(std::size_t(E) + 1, 0);
    for (int e = 0; e < E; ++e) prefix[e + 1] = prefix[e] + own[e];
    std::vector<ChunkPlan> out(K);
    std::int64_t r_base = 0, p_base = 0;
    for (int i = 0; i < K; ++i) {
        ChunkPlan& c = out[i];
        c.e0 = chunk_begin(i, El, K), c.e1 = chunk_begin(i + 1, El, K);
        const int n = c.e1 - c.e0;
        std::vector<std::int32_t> cc(std::size_t(G) * n);
        for (int s = 0; s < G; ++s)
            for (int el = 0; el < n; ++el) cc[std::size_t(s) * n + el] = got[s * El + c.e0 + el];
        c.recv = plan_receive(cc.data(), G, n, align);
        c.r_base = r_base, c.p_base = p_base;
        c.send_off.resize(G), c.send_rows.resize(G), c.recv_off.resize(G), c.recv_rows.resize(G);
        std::int64_t at = r_base;
        for (int p = 0; p < G; ++p) {
            c.send_off[p] = prefix[p * El + c.e0];
            c.send_rows[p] = prefix[p * El + c.e1] - c.send_off[p];
            std::int64_t rows = 0;
            for (int el = 0; el < n; ++el) rows += cc[std::size_t(p) * n + el];
            c.recv_off[p] = at, c.recv_rows[p] = rows, at += rows;
        }
        r_base += c.recv.R, p_base += c.recv.P;
    }
    return out;
}

}  // namespace moe::nccl
