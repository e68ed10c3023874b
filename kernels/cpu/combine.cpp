// CPU reference for combine, y[t] = Σ_j w[t, j]·Y[inv[t, j]] in fp32, and for the expert-parallel bookkeeping
// (placement, the per-(src, dst) traffic matrix, the seed's 2·T·k·d·b and its dedup variant).
#include <algorithm>

#include "kernels/api.hpp"
#include "kernels/common/error.hpp"
#include "kernels/cpu/parallel.hpp"

namespace moe {

namespace combine {
void gather(const bf16_t* y, const std::int32_t* inv, const float* weights, std::int64_t tokens, int k, int hidden,
            bf16_t* out) {
    moe::cpu::parallel_for(tokens, 0, 256, [&](std::int64_t b, std::int64_t e) {
        std::vector<float> acc(hidden);
        for (std::int64_t t = b; t < e; ++t) {
            std::fill(acc.begin(), acc.end(), 0.f);
            for (int j = 0; j < k; ++j) {
                std::int32_t r = inv[t * k + j];
                if (r < 0) continue;
                float w = weights[t * k + j];
                const bf16_t* row = y + std::int64_t(r) * hidden;
                for (int i = 0; i < hidden; ++i) acc[i] += w * bf16_to_f32(row[i]);
            }
            for (int i = 0; i < hidden; ++i) out[t * hidden + i] = f32_to_bf16(acc[i]);
        }
    });
}
}  // namespace combine

namespace comm {

int rank_of_expert(int expert, int experts, int ranks) { return expert / (experts / ranks); }

int rank_of_token(std::int64_t token, std::int64_t tokens, int ranks) {
    return static_cast<int>(token * ranks / tokens);
}

Traffic traffic(const std::int32_t* ids, std::int64_t tokens, int k, int experts, int ranks, int hidden,
                int bytes_per_elem) {
    MOE_ASSERT(ranks >= 1 && experts % ranks == 0, "experts (" << experts << ") must divide by ranks (" << ranks << ")");
    Traffic tr;
    tr.ranks = ranks;
    tr.tokens.assign(std::size_t(ranks) * ranks, 0);
    tr.dedup.assign(std::size_t(ranks) * ranks, 0);
    tr.sent.assign(ranks, 0);
    std::vector<char> seen(ranks);
    for (std::int64_t t = 0; t < tokens; ++t) {
        int src = rank_of_token(t, tokens, ranks);
        std::fill(seen.begin(), seen.end(), 0);
        for (int j = 0; j < k; ++j) {
            int e = ids[t * k + j];
            if (e < 0) continue;
            int dst = rank_of_expert(e, experts, ranks);
            ++tr.tokens[std::size_t(src) * ranks + dst];
            if (!seen[dst]) {
                seen[dst] = 1;
                ++tr.dedup[std::size_t(src) * ranks + dst];
            }
        }
    }
    double row = double(hidden) * bytes_per_elem;
    tr.seed_bytes = 2.0 * double(tokens) * k * row;
    for (int s = 0; s < ranks; ++s)
        for (int d = 0; d < ranks; ++d) {
            if (s == d) continue;
            tr.sent[s] += tr.tokens[std::size_t(s) * ranks + d];
            tr.routed_bytes += 2.0 * tr.tokens[std::size_t(s) * ranks + d] * row;
            tr.dedup_bytes += 2.0 * tr.dedup[std::size_t(s) * ranks + d] * row;
        }
    return tr;
}

}  // namespace comm
}  // namespace moe
