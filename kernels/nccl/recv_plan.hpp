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

}  // namespace moe::nccl
