// The expert-parallel layer's setup (ep_layer.cu runs it): the spec's checks, the sizes of one run, and each rank's
// streams, buffers and inputs over its slice of the global RNG index range, after a check against its free memory.
#include <cuda_runtime.h>

#include <algorithm>
#include <memory>
#include <sstream>

#include "kernels/common/rng.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/context.cuh"
#include "kernels/cuda/counting.cuh"
#include "kernels/cuda/launchers.hpp"
#include "kernels/nccl/comm.hpp"
#include "kernels/nccl/ep_common.hpp"
#include "kernels/nccl/ep_kernels.hpp"
#include "kernels/nccl/recv_plan.hpp"

namespace moe::nccl::ep {

namespace {

std::string gib(double b) {
    std::ostringstream os;
    os.precision(2);
    os << std::fixed << b / (1024.0 * 1024.0 * 1024.0) << " GiB";
    return os.str();
}

}  // namespace

void check_spec(const LayerSpec& s, int G, const EpOptions& o) {
    if (G < 1) MOE_BAD_INPUT("ranks " << G << " must be >= 1");
    if (s.tokens < 1) MOE_BAD_INPUT("tokens " << s.tokens << " must be >= 1");
    if (s.experts < 1 || s.experts > gpu::counting::kMaxExperts)
        MOE_BAD_INPUT("experts " << s.experts << " must be in [1, " << gpu::counting::kMaxExperts
                                 << "] on the nccl backend");
    if (s.experts % G != 0)
        MOE_BAD_INPUT("experts " << s.experts << " must be a multiple of ranks " << G
                                 << ": the nccl backend places E/G experts on each rank");
    if (s.top_k < 1 || s.top_k > s.experts)
        MOE_BAD_INPUT("top-k " << s.top_k << " must be in [1, " << s.experts << "]");
    if (s.hidden < 1 || s.ffn < 1) MOE_BAD_INPUT("hidden and ffn must be >= 1");
    if (s.align < 1) MOE_BAD_INPUT("align " << s.align << " must be >= 1");
    if (!(s.capacity_factor >= 0) || s.capacity_factor > 1000)
        MOE_BAD_INPUT("capacity factor " << s.capacity_factor << " must be in [0, 1000] (0: dropless)");
    if (o.chunks < 1 || o.chunks > s.experts / G)
        MOE_BAD_INPUT("chunks " << o.chunks << " must be in [1, " << s.experts / G
                                << "]: a chunk is a group of at least one of a rank's E/G local experts");
    if (dispatch::max_rows(s.tokens, s.top_k, s.experts, s.align) >= (std::int64_t(1) << 31))
        MOE_BAD_INPUT("tokens·top-k + experts·(align−1) must stay below 2^31 on the nccl backend");
}

EpShape ep_shape(const LayerSpec& s, int G, const EpOptions& eo, bool experts_on) {
    EpShape sh;
    sh.T = s.tokens, sh.G = G, sh.E = s.experts, sh.k = s.top_k, sh.d = s.hidden, sh.F = s.ffn;
    sh.El = s.experts / G, sh.K = eo.chunks, sh.experts_on = experts_on;
    const std::int64_t T = sh.T;
    const int E = sh.E, k = sh.k, El = sh.El, K = sh.K;
    // nopack has no packed rows to send: the send side packs with scan (same plan, stable order) instead.
    sh.st = s.strategy == Strategy::NoPack ? Strategy::Scan : s.strategy;
    sh.cap = route::capacity(s.capacity_factor, T, k, E);
    sh.Tmax = std::max<std::int64_t>(token_begin(1, T, G), 1);  // largest token slice, ceil(T/G)
    // A token's k experts are distinct: at most min(k, E/G) rows per token reach one rank, and with a capacity at
    // most C rows per expert. The receive buffers are sized for that worst case, so no size waits for the host.
    sh.recv_max = T * std::min(k, El);
    if (sh.cap > 0) sh.recv_max = std::min(sh.recv_max, sh.cap * El);
    sh.p_max = sh.recv_max + std::int64_t(El) * (s.align - 1);
    sh.plan_ints = 4 * std::size_t(G) * El + 4 * std::size_t(El) + 4 * std::size_t(K) + 8;
    sh.row_b = std::size_t(s.hidden) * sizeof(bf16_t);
    sh.host_ints = 2 * std::size_t(E) + std::size_t(G) * El + sh.plan_ints;
    return sh;
}

std::unique_ptr<RankState> make_rank(Communicator& c, int g, const LayerSpec& s, const EpShape& sh, bool overlap,
                                     const std::vector<float>& logp_host) {
    const std::int64_t T = sh.T, cap = sh.cap, Tmax = sh.Tmax, recv_max = sh.recv_max, p_max = sh.p_max;
    const int G = sh.G, E = sh.E, k = sh.k, d = sh.d, F = sh.F, El = sh.El;
    const bool experts_on = sh.experts_on;
    const Strategy st = sh.st;
    const std::size_t plan_ints = sh.plan_ints, row_b = sh.row_b, host_ints = sh.host_ints;
    auto rs = std::make_unique<RankState>();
    RankState& R = *rs;
    R.g = g;
    R.t0 = token_begin(g, T, G);
    R.T = token_begin(g + 1, T, G) - R.t0;
    R.ns = c.stream(g);
    if (overlap) {
        MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&R.cs, cudaStreamNonBlocking));
        R.own_cs = true;
        MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&R.ys, cudaStreamNonBlocking));
    } else {
        R.cs = R.ns;
    }
    const std::int64_t Tg = std::max<std::int64_t>(R.T, 1);  // ≥ 1 element: launchers assert non-null buffers
    std::size_t ws_bytes = gpu::dispatch_workspace_bytes(st, R.T, k, E);
    if (cap > 0) ws_bytes = std::max(ws_bytes, gpu::capacity_workspace_bytes(G * Tmax, k, E));
    if (experts_on)
        ws_bytes = std::max(ws_bytes, gpu::experts_workspace_bytes(std::max<std::int64_t>(p_max, 1), El, F));
    std::size_t need = ws_bytes + std::size_t(Tg) * (2 * row_b + 4 * E + 12 * k) + std::size_t(Tg) * k * row_b +
                       std::size_t(recv_max) * row_b + (std::size_t(256) << 20);
    if (cap > 0) need += std::size_t(G) * Tmax * k * 8;
    if (experts_on)
        need += std::size_t(El) * 3 * F * row_b + 2 * std::size_t(p_max) * row_b + std::size_t(recv_max) * row_b +
                std::size_t(Tg) * k * row_b;
    const std::size_t free_b = gpu::free_memory_bytes(c.device(g));
    if (need > free_b) {
        std::ostringstream os;
        os << "rank " << g << " needs about " << need << " bytes (" << gib(double(need)) << ") on GPU " << c.device(g)
           << " but " << free_b << " bytes (" << gib(double(free_b))
           << ") are free; lower --tokens, --hidden, --ffn or --experts";
        throw Error(ErrorKind::OutOfMemory, os.str());
    }
    const Stream sg = R.ns;
    gpu::context();  // this device's cuBLAS handles and side streams now, not inside the first timed repeat
    R.x = DeviceBuffer<bf16_t>(Tg * d, "x slice");
    R.logp = DeviceBuffer<float>(E, "log popularity");
    R.logits = DeviceBuffer<float>(Tg * E, "logits");
    R.w = DeviceBuffer<float>(Tg * k, "top-k weights");
    R.ids = DeviceBuffer<std::int32_t>(Tg * k, "top-k ids");
    R.counts = DeviceBuffer<std::int32_t>(E, "counts");
    R.offsets = DeviceBuffer<std::int32_t>(E + 1, "offsets");
    R.row_token = DeviceBuffer<std::int32_t>(Tg * k, "row_token");
    R.inv = DeviceBuffer<std::int32_t>(Tg * k, "inverse map");
    R.xs = DeviceBuffer<bf16_t>(Tg * k * d, "packed rows to send");
    R.cnt_own = DeviceBuffer<std::int32_t>(E, "own counts");
    R.cnt_recv = DeviceBuffer<std::int32_t>(std::size_t(G) * El, "received counts");
    R.xr = DeviceBuffer<bf16_t>(std::max<std::int64_t>(recv_max, 1) * d, "received rows");
    R.plan = DeviceBuffer<std::int32_t>(plan_ints, "receive plan");
    R.ws = DeviceBuffer<std::uint8_t>(ws_bytes, "stage workspace");
    R.scratch = DeviceBuffer<float>(1, "barrier scratch");
    MOE_CUDA_CHECK(cudaMemsetAsync(R.scratch.data(), 0, sizeof(float), R.ns));
    if (s.router == Router::Gate) R.wg = DeviceBuffer<bf16_t>(std::size_t(E) * d, "gate weights");
    if (cap > 0) {
        // Every rank's ids and weights, slot g = rank g's tokens padded to Tmax with id −1 (never counted), so
        // the slots in rank order are the global (t, j) order the reference drops in.
        R.ids_all = DeviceBuffer<std::int32_t>(std::size_t(G) * Tmax * k, "all ranks' ids");
        R.w_all = DeviceBuffer<float>(std::size_t(G) * Tmax * k, "all ranks' weights");
        R.demand = DeviceBuffer<std::int32_t>(E, "demand");
        MOE_CUDA_CHECK(cudaMemsetAsync(R.ids_all.data(), 0xFF, R.ids_all.bytes(), R.ns));
        MOE_CUDA_CHECK(cudaMemsetAsync(R.w_all.data(), 0, R.w_all.bytes(), R.ns));
    }
    if (experts_on) {
        R.w1 = DeviceBuffer<bf16_t>(std::size_t(El) * 2 * F * d, "local expert w1");
        R.w2 = DeviceBuffer<bf16_t>(std::size_t(El) * d * F, "local expert w2");
        R.xe = DeviceBuffer<bf16_t>(std::max<std::int64_t>(p_max, 1) * d, "rows by local expert");
        R.ye = DeviceBuffer<bf16_t>(std::max<std::int64_t>(p_max, 1) * d, "expert outputs");
        R.row_tag = DeviceBuffer<std::int32_t>(std::max<std::int64_t>(p_max, 1), "row tags");
        R.yr = DeviceBuffer<bf16_t>(std::max<std::int64_t>(recv_max, 1) * d, "outputs to return");
        R.yback = DeviceBuffer<bf16_t>(Tg * k * d, "returned outputs");
        R.out = DeviceBuffer<bf16_t>(Tg * d, "combine output");
    }
    R.host = std::make_unique<Pinned<std::int32_t>>(host_ints);
    MOE_CUDA_CHECK(cudaHostAlloc(&R.gate_h, sizeof(unsigned), cudaHostAllocMapped | cudaHostAllocPortable));
    *R.gate_h = 0;
    void* gd = nullptr;
    MOE_CUDA_CHECK(cudaHostGetDevicePointer(&gd, R.gate_h, 0));
    R.gate_d = static_cast<const unsigned*>(gd);

    // Global index ranges: the rank's x rows, its experts' weights; the gate is the whole [E, d].
    make_bf16_range(s.seed, kStreamX, R.t0 * d, R.T * d, x_scale(), R.x.data(), sg);
    if (s.router == Router::Gate) gpu::make_gate(s.seed, E, d, R.wg.data(), sg);
    if (experts_on) {
        const std::int64_t n1 = std::int64_t(El) * 2 * F * d, n2 = std::int64_t(El) * d * F;
        make_bf16_range(s.seed, kStreamW1, std::int64_t(g) * n1, n1, w1_scale(d), R.w1.data(), sg);
        make_bf16_range(s.seed, kStreamW2, std::int64_t(g) * n2, n2, w2_scale(F), R.w2.data(), sg);
    }
    MOE_CUDA_CHECK(cudaMemcpyAsync(R.logp.data(), logp_host.data(), sizeof(float) * E, cudaMemcpyHostToDevice, R.ns));
    return rs;
}

}  // namespace moe::nccl::ep
