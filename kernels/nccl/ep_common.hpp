// Internal to the expert-parallel layer (ep_layer.cu: the timed repeats; ep_setup.cu: checks, sizes, per-rank
// buffers and inputs; ep_results.cu: every rank's numbers and tensors gathered into the EpRun): the state they share.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/api.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/launchers.hpp"
#include "kernels/nccl/comm.hpp"
#include "kernels/nccl/nccl_api.hpp"

namespace moe::nccl::ep {

using gpu::DeviceBuffer;

// Page-locked, portable host memory: async copies from any rank's stream land in it.
template <class T>
class Pinned {
  public:
    explicit Pinned(std::size_t n) {
        MOE_CUDA_CHECK(cudaHostAlloc(&p_, std::max<std::size_t>(n, 1) * sizeof(T), cudaHostAllocPortable));
    }
    ~Pinned() { cudaFreeHost(p_); }
    Pinned(const Pinned&) = delete;
    Pinned& operator=(const Pinned&) = delete;
    T* data() { return p_; }
    T& operator[](std::size_t i) { return p_[i]; }

  private:
    T* p_ = nullptr;
};

// One rank's timeline of a repeat: events recorded on its streams, and spans between them.
struct SpanRef {
    const char* label;
    const char* lane;
    int chunk;
    int a, b;  // event indices
};

struct RankState {
    int g = 0;
    std::int64_t t0 = 0, T = 0;  // global first token and token count of this rank
    cudaStream_t ns = nullptr;   // comm stream (the communicator's): every NCCL call
    cudaStream_t cs = nullptr;   // compute stream: == ns without overlap
    cudaStream_t ys = nullptr;   // with overlap: the outputs' way back over the copy engines, beside the rows' way out
    bool own_cs = false;
    DeviceBuffer<bf16_t> x, wg, w1, w2, xs, xr, xe, ye, yr, yback, out;
    DeviceBuffer<float> logp, logits, w, w_all, scratch;
    DeviceBuffer<std::int32_t> ids, counts, offsets, row_token, inv, cnt_own, cnt_recv, plan, row_tag, ids_all, demand;
    DeviceBuffer<std::uint8_t> ws;
    std::unique_ptr<Pinned<std::int32_t>> host;  // own counts [E], received [G·El], demand [E], plan staging
    unsigned* gate_h = nullptr;  // pinned, mapped: the value the gate kernels wait for (gate_d on the device)
    const unsigned* gate_d = nullptr;
    unsigned epoch = 0;
    std::vector<cudaEvent_t> ev;
    int used = 0;
    std::vector<SpanRef> spans;

    int mark(cudaStream_t s) {
        if (used == int(ev.size())) {
            ev.push_back(nullptr);
            MOE_CUDA_CHECK(cudaEventCreate(&ev.back()));
        }
        MOE_CUDA_CHECK(cudaEventRecord(ev[used], s));
        return used++;
    }
    void span(const char* label, const char* lane, int a, int b, int chunk = -1) {
        spans.push_back({label, lane, chunk, a, b});
    }
    // The compute stream waits for event i (no-op without overlap: one stream keeps the order by itself).
    void cs_waits(int i) {
        if (cs != ns) MOE_CUDA_CHECK(cudaStreamWaitEvent(cs, ev[i], 0));
    }
    void ns_waits(int i) {
        if (cs != ns) MOE_CUDA_CHECK(cudaStreamWaitEvent(ns, ev[i], 0));
    }
    ~RankState() {
        if (gate_h) cudaFreeHost(gate_h);
        for (cudaEvent_t e : ev) cudaEventDestroy(e);
        if (own_cs && cs) cudaStreamDestroy(cs);
        if (ys) cudaStreamDestroy(ys);
    }
};

// Frees every rank's state with its own device current. Declared before the AbortOnUnwind guard, so on an error
// the communicator is aborted first and no cudaFree waits on a stuck kernel.
struct RankStates {
    std::vector<int> devices;
    std::vector<std::unique_ptr<RankState>> r;  // [G], null for ranks of other processes
    ~RankStates() {
        for (std::size_t g = 0; g < r.size(); ++g)
            if (r[g]) {
                cudaSetDevice(devices[g]);
                r[g].reset();
            }
    }
};

// The sizes of one run, the same on every rank.
struct EpShape {
    std::int64_t T = 0;
    int G = 0, E = 0, k = 0, d = 0, F = 0, El = 0, K = 0;  // El = E / G local experts, K chunks of them
    bool experts_on = true;
    Strategy st = Strategy::Scan;  // the send side's packing
    std::int64_t cap = 0;          // tokens per expert, 0: dropless
    std::int64_t Tmax = 0;         // largest token slice, ceil(T/G)
    std::int64_t recv_max = 0;     // rows one rank can receive, at worst
    std::int64_t p_max = 0;        // those rows with every local expert's segment padded to align
    std::size_t plan_ints = 0;     // the receive plans of every chunk, staged in pinned memory
    std::size_t row_b = 0;         // bytes of one row
    std::size_t host_ints = 0;     // a rank's pinned ints: own counts, received counts, demand, plan staging
};

// ---- setup (ep_setup.cu) ----
void check_spec(const LayerSpec& s, int G, const EpOptions& o);  // BadInput naming the value and what is allowed
EpShape ep_shape(const LayerSpec& s, int G, const EpOptions& eo, bool experts_on);
// Rank g's streams, buffers and inputs, on its device (made current by the caller); OutOfMemory when they do not fit.
std::unique_ptr<RankState> make_rank(Communicator& c, int g, const LayerSpec& s, const EpShape& sh, bool overlap,
                                     const std::vector<float>& logp_host);

// f(rank state) for every rank this process drives, with the rank's device current.
template <class F>
void each_rank(Communicator& c, RankStates& states, F&& f) {
    for (int g : c.local()) {
        c.use(g);
        f(*states.r[g]);
    }
}

// [G] pointers get(rank state) for the NCCL calls, null for ranks of other processes.
template <class Get>
auto rank_ptrs(Communicator& c, RankStates& states, Get get) {
    using P = decltype(get(*states.r[c.local().front()]));
    std::vector<P> v(c.ranks(), nullptr);
    for (int g : c.local()) v[g] = get(*states.r[g]);
    return v;
}

inline double median_of(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// ---- results (ep_results.cu) ----
using RowTable = std::vector<std::vector<std::int64_t>>;            // [g][peer]
using RepeatTimes = std::vector<std::vector<std::vector<double>>>;  // [g][repeat][1 + 2·spans]
// Every rank's counts, traffic, pair times and span times to every process (one NCCL all-gather), into run.
void gather_records(Communicator& c, RankStates& states, const EpShape& sh, int repeats,
                    const std::vector<SpanRef>& layout, const RowTable& send_rows, const RowTable& recv_rows,
                    const std::vector<double>& pair_mine, const RepeatTimes& times, EpRun& run);
// The outputs (keep_tensors, with experts) and the kept ids and weights (keep_tensors or keep_routing), gathered.
void gather_tensors(Communicator& c, RankStates& states, const EpShape& sh, const LayerRunOptions& opt, EpRun& run);

}  // namespace moe::nccl::ep
