// The CPU reference of the measured pipeline's arithmetic (kernels/pipeline.hpp): the same tensors, seeds and
// order of operations as the GPU run, one micro-batch at a time. Only the scheduling differs, and scheduling
// must not change the answer.
#include "kernels/pipeline.hpp"

#include <algorithm>
#include <vector>

#include "kernels/api.hpp"
#include "kernels/attention.hpp"
#include "kernels/common/error.hpp"

namespace moe::pipeline::cpu {

void reference(const Spec& spec, std::vector<bf16_t>& out, int threads) {
    const LayerSpec& ls = spec.layer;
    const std::int64_t B = ls.tokens;
    const int m = spec.micro_batches, L = spec.layers, E = ls.experts, k = ls.top_k, d = ls.hidden, F = ls.ffn;
    if (m < 1 || L < 1 || B < m) MOE_BAD_INPUT("pipeline reference: need tokens >= micro-batches >= 1 and layers >= 1");
    attention::Spec all;
    all.batch = B;
    all.context = spec.context;
    all.q_heads = spec.q_heads;
    all.kv_groups = spec.kv_groups;
    all.hidden = d;
    attention::validate(all);
    std::vector<bf16_t> kc(attention::kv_elems(all)), vc(attention::kv_elems(all));
    attention::make_kv(seed_for(ls.seed, kSeedKV, 0), all, kc.data(), vc.data());
    const std::int64_t qkv_rows = attention::qkv_cols(all);
    std::vector<std::vector<bf16_t>> wqkv(L), wo(L), wg(L), w1(L), w2(L);
    for (int l = 0; l < L; ++l) {
        wqkv[l].resize(std::size_t(qkv_rows) * d);
        wo[l].resize(std::size_t(d) * spec.q_heads * attention::Spec::head_dim);
        attention::make_weights(ls.seed, l, all, wqkv[l].data(), wo[l].data());
        if (ls.router == Router::Gate) {
            wg[l].resize(std::size_t(E) * d);
            route::make_gate(seed_for(ls.seed, kSeedGate, l), E, d, wg[l].data());
        }
        w1[l].resize(std::size_t(E) * 2 * F * d);
        w2[l].resize(std::size_t(E) * d * F);
        experts::make_w1(seed_for(ls.seed, kSeedW1, l), E, F, d, w1[l].data());
        experts::make_w2(seed_for(ls.seed, kSeedW2, l), E, d, F, w2[l].data());
    }
    const std::vector<float> logp = route::log_popularity(ls.skew, E);
    const Strategy st = ls.strategy == Strategy::NoPack ? Strategy::Scan : ls.strategy;
    (void)st;  // every strategy yields the same stable plan on the CPU

    out.assign(std::size_t(B) * d, bf16_t{});
    for (int i = 0; i < m; ++i) {
        const std::int64_t s0 = micro_batch_start(B, m, i), n = micro_batch_start(B, m, i + 1) - s0;
        attention::Spec a = all;
        a.batch = n;
        attention::Spec before = all;
        before.batch = s0;
        const std::size_t kv_off = std::size_t(attention::kv_elems(before));
        std::vector<bf16_t> x(std::size_t(n) * d), h(std::size_t(n) * d);
        route::make_x(seed_for(ls.seed, kSeedX, std::uint64_t(s0)), n, d, x.data());
        const std::int64_t rows_max = dispatch::max_rows(n, k, E, ls.align);
        std::vector<float> logits(std::size_t(n) * E), w(std::size_t(n) * k);
        std::vector<std::int32_t> ids(std::size_t(n) * k), counts(E), offsets(E + 1), row_token(rows_max),
            inv(std::size_t(n) * k);
        std::vector<bf16_t> xp(std::size_t(rows_max) * d), y(std::size_t(rows_max) * d);
        for (int l = 0; l < L; ++l) {
            attention::decode(a, x.data(), wqkv[l].data(), wo[l].data(), kc.data() + kv_off, vc.data() + kv_off,
                              h.data(), threads);
            if (ls.router == Router::Gate)
                route::gate_logits(h.data(), wg[l].data(), logp.data(), n, d, E, logits.data());
            else
                route::popularity_logits(seed_for(ls.seed, std::uint64_t(l), std::uint64_t(s0)), logp.data(), n, E,
                                         logits.data());
            route::softmax_topk(logits.data(), n, E, k, ls.renormalize, ids.data(), w.data());
            const std::int64_t cap = route::capacity(ls.capacity_factor, n, k, E);
            if (cap > 0) route::apply_capacity(ids.data(), w.data(), n, k, E, cap, ls.drop_policy);
            std::fill(row_token.begin(), row_token.end(), -1);
            const std::int64_t rows = dispatch::plan(ids.data(), n, k, E, ls.align, counts.data(), offsets.data(),
                                                     row_token.data(), inv.data());
            dispatch::pack(h.data(), row_token.data(), rows, d, xp.data());
            experts::ffn(xp.data(), nullptr, row_token.data(), counts.data(), offsets.data(), E, d, F, w1[l].data(),
                         w2[l].data(), y.data(), threads);
            combine::gather(y.data(), inv.data(), w.data(), n, k, d, x.data());
        }
        std::copy(x.begin(), x.end(), out.begin() + s0 * d);
    }
}

}  // namespace moe::pipeline::cpu
