// The expert FFN's test fixture: one case on the host (routing, plan, packed rows, weights, the CPU reference and
// the allowance of h's rounding) and on the device, shared by the expert FFN's GPU tests.
#pragma once
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/cuda/launchers.hpp"
#include "tests/gpu/gpu_test.hpp"

namespace gpu_test {
// Sets an environment variable for a scope ("" unsets it), restoring the old value after.
struct ScopedEnv {
    std::string name, old;
    bool had = false;
    ScopedEnv(const char* n, const char* v) : name(n) {
        if (const char* o = std::getenv(n)) had = true, old = o;
        if (*v)
            setenv(n, v, 1);
        else
            unsetenv(n);
    }
    ~ScopedEnv() {
        if (had)
            setenv(name.c_str(), old.c_str(), 1);
        else
            unsetenv(name.c_str());
    }
};
// What a rounding of the intermediate h may move each output by. The reference rounds h1 = x·w1ᵀ and h to bf16
// after fp32 sums; a GPU that sums in another order can land on the other side of a rounding boundary, so an h_f
// may differ by one bf16 ulp (2⁻⁷·|h_f|), which moves y_i by up to 2⁻⁷·|h_f·w2[i,f]|. The allowance is four such
// flips at the root-sum-square of the terms: far below what a wrong row, expert or k step gives. Large d with
// small F (few, large terms in y) needs it: without it 27 of 1.2 M outputs at d = 7168, F = 128 failed on one seed.
inline std::vector<float> h_rounding_allowance(const std::vector<moe::bf16_t>& xp,
                                               const std::vector<std::int32_t>& counts,
                                               const std::vector<std::int32_t>& offsets,
                                               const std::vector<moe::bf16_t>& w1, const std::vector<moe::bf16_t>& w2,
                                               int E, int d, int F, std::size_t n_out) {
    std::vector<float> extra(n_out, 0.f), h(F), g(2 * F);
    auto f = [](moe::bf16_t v) { return moe::bf16_to_f32(v); };
    auto r = [](float v) { return moe::bf16_to_f32(moe::f32_to_bf16(v)); };
    for (int e = 0; e < E; ++e)
        for (std::int64_t row = offsets[e]; row < offsets[e] + counts[e]; ++row) {
            for (int j = 0; j < 2 * F; ++j) {
                float acc = 0;
                for (int c = 0; c < d; ++c) acc += f(xp[row * d + c]) * f(w1[(std::size_t(e) * 2 * F + j) * d + c]);
                g[j] = r(acc);
            }
            for (int j = 0; j < F; ++j) h[j] = r(g[j] / (1.0f + std::exp(-g[j])) * g[F + j]);
            for (int i = 0; i < d; ++i) {
                double ss = 0;
                for (int j = 0; j < F; ++j) {
                    const double t = double(h[j]) * f(w2[(std::size_t(e) * d + i) * F + j]);
                    ss += t * t;
                }
                if (std::size_t(row) * d + i < n_out) extra[row * d + i] = float(4 * moe::kBf16Eps * std::sqrt(ss));
            }
        }
    return extra;
}

// bf16_close with the allowance of h's rounding.
inline std::string ffn_close(const std::vector<moe::bf16_t>& got, const std::vector<moe::bf16_t>& want, std::size_t n,
                             const std::vector<float>& extra) {
    auto g = to_float(got, n), w = to_float(want, n);
    return first_outside(g, w, 2 * moe::kBf16Eps * rms(w), 2 * moe::kBf16Eps, "y", &extra);
}

// One case on the host (routing, plan, packed rows, weights, the CPU reference and its rounding allowance) and on
// the device, with y and the workspace poisoned before each run.
struct FfnCase {
    const Case c;
    std::int64_t max_rows = 0, rows = 0;
    std::vector<std::int32_t> counts, offsets, row_token;
    std::vector<moe::bf16_t> want;
    std::vector<float> extra;
    moe::gpu::DeviceBuffer<moe::bf16_t> dx, dxp, dw1, dw2, y;
    moe::gpu::DeviceBuffer<std::int32_t> dcounts, doffsets, drt;
    std::size_t wsb = 0;
    moe::gpu::DeviceBuffer<std::uint8_t> ws;

    FfnCase(const Case& cs, std::uint64_t seed) : c(cs) {
        HostRouting r = host_routing(seed, c);
        max_rows = moe::dispatch::max_rows(c.T, c.k, c.E, c.align);
        counts.resize(c.E), offsets.resize(c.E + 1), row_token.assign(max_rows, -1);
        std::vector<std::int32_t> inv(r.ids.size());
        rows = moe::dispatch::plan(r.ids.data(), c.T, c.k, c.E, c.align, counts.data(), offsets.data(),
                                   row_token.data(), inv.data());
        std::vector<moe::bf16_t> hx(std::size_t(c.T) * c.d), xp(std::size_t(max_rows) * c.d),
            w1(std::size_t(c.E) * 2 * c.F * c.d), w2(std::size_t(c.E) * c.d * c.F);
        want.resize(std::size_t(max_rows) * c.d);
        moe::route::make_x(seed, c.T, c.d, hx.data());
        moe::dispatch::pack(hx.data(), row_token.data(), rows, c.d, xp.data());
        moe::experts::make_w1(seed, c.E, c.F, c.d, w1.data());
        moe::experts::make_w2(seed, c.E, c.d, c.F, w2.data());
        moe::experts::ffn(xp.data(), nullptr, nullptr, counts.data(), offsets.data(), c.E, c.d, c.F, w1.data(),
                          w2.data(), want.data(), 0);
        extra = h_rounding_allowance(xp, counts, offsets, w1, w2, c.E, c.d, c.F, std::size_t(rows) * c.d);
        dx = moe::gpu::DeviceBuffer<moe::bf16_t>(hx.size()), dxp = moe::gpu::DeviceBuffer<moe::bf16_t>(xp.size());
        dw1 = moe::gpu::DeviceBuffer<moe::bf16_t>(w1.size()), dw2 = moe::gpu::DeviceBuffer<moe::bf16_t>(w2.size());
        y = moe::gpu::DeviceBuffer<moe::bf16_t>(want.size());
        dcounts = moe::gpu::DeviceBuffer<std::int32_t>(c.E), doffsets = moe::gpu::DeviceBuffer<std::int32_t>(c.E + 1);
        drt = moe::gpu::DeviceBuffer<std::int32_t>(max_rows);
        dx.upload(hx), dxp.upload(xp), dw1.upload(w1), dw2.upload(w2);
        dcounts.upload(counts), doffsets.upload(offsets), drt.upload(row_token);
        wsb = moe::gpu::experts_workspace_bytes(max_rows, c.E, c.F);
        ws = moe::gpu::DeviceBuffer<std::uint8_t>(wsb);
    }
    void poison() {
        y.poison();
        ws.poison();
    }
    // From the device plan alone; `assignments` is the hint that sizes chunks and tiles.
    moe::gpu::ExpertsImpl run_device(moe::gpu::ExpertsImpl impl, bool packed, std::int64_t assignments) {
        poison();
        const auto ran = moe::gpu::experts_ffn_device(impl, packed ? dxp.data() : nullptr, dx.data(), drt.data(),
                                                      dcounts.data(), doffsets.data(), max_rows, assignments, c.E, c.d,
                                                      c.F, dw1.data(), dw2.data(), y.data(), ws.data(), wsb, nullptr);
        moe::gpu::synchronize(nullptr);
        return ran;
    }
    // y against the reference: "" when every element is within tolerance.
    std::string check() { return ffn_close(y.download(std::size_t(rows) * c.d), want, std::size_t(rows) * c.d, extra); }
};

}  // namespace gpu_test
