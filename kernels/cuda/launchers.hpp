// Every GPU launcher of the cuda backend beyond the few declared in kernels/api.hpp, with the device-memory
// helpers the engine, the tests and the benchmark share. Plain C++ (no CUDA header), so host-only code can use it.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kernels/api.hpp"

namespace moe::gpu {

// ---- device memory, streams, events --------------------------------------------------------
// Throws OutOfMemory naming `what`, the bytes asked for and the bytes free.
void* device_alloc(std::size_t bytes, const char* what);
void device_free(void* p) noexcept;
void copy_h2d(void* dst, const void* src, std::size_t bytes);  // synchronous
void copy_d2h(void* dst, const void* src, std::size_t bytes);  // synchronous
void copy_d2d(void* dst, const void* src, std::size_t bytes, Stream s);
void fill_bytes(void* dst, int byte, std::size_t bytes, Stream s);
void synchronize(Stream s);  // null: the whole device
// After a failed call: clears a non-sticky error and says whether the device still runs work (false: a sticky
// error, such as a kernel fault, that every later call would report again).
bool device_usable() noexcept;
Stream create_stream();
void destroy_stream(Stream s) noexcept;
std::size_t l2_bytes();  // of the current device

using Event = void*;
Event create_event();
void destroy_event(Event e) noexcept;
void record_event(Event e, Stream s);
float elapsed_ms(Event start, Event stop);  // waits for `stop`

// An owned device array of T. Moves, never copies.
template <class T>
class DeviceBuffer {
  public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(std::size_t n, const char* what = "buffer")
        : p_(n ? static_cast<T*>(device_alloc(n * sizeof(T), what)) : nullptr), n_(n) {}
    DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        if (this != &o) {
            device_free(p_);
            p_ = std::exchange(o.p_, nullptr);
            n_ = std::exchange(o.n_, 0);
        }
        return *this;
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer() { device_free(p_); }

    T* data() const { return p_; }
    std::size_t size() const { return n_; }
    std::size_t bytes() const { return n_ * sizeof(T); }
    void upload(const std::vector<T>& v) { copy_h2d(p_, v.data(), std::min(v.size(), n_) * sizeof(T)); }
    std::vector<T> download(std::size_t count) const {
        std::vector<T> v(count);
        copy_d2h(v.data(), p_, count * sizeof(T));
        return v;
    }
    std::vector<T> download() const { return download(n_); }
    void poison(Stream s = nullptr) { fill_bytes(p_, 0xFF, bytes(), s); }  // 0xFF: NaN for floats, -1 for ints

  private:
    T* p_ = nullptr;
    std::size_t n_ = 0;
};

// ---- inputs: bit-equal to the CPU reference's make_* -------------------------------------------
void make_bf16(std::uint64_t seed, std::uint64_t stream_id, std::int64_t n, float scale, bf16_t* out, Stream s);
void make_x(std::uint64_t seed, std::int64_t tokens, int hidden, bf16_t* x, Stream s);
void make_gate(std::uint64_t seed, int experts, int hidden, bf16_t* wg, Stream s);
void make_w1(std::uint64_t seed, int experts, int ffn, int hidden, bf16_t* w1, Stream s);
void make_w2(std::uint64_t seed, int experts, int hidden, int ffn, bf16_t* w2, Stream s);

// ---- routing ------------------------------------------------------------------------------------
// logits = x·wg^T through cuBLAS (bf16 in, fp32 out), then + logp and softmax + top-k in one fused pass
// that writes the biased logits back. `logp` is on the device.
void gate_route(const bf16_t* x, const bf16_t* wg, const float* logp, std::int64_t tokens, int hidden, int experts,
                int k, bool renormalize, float* logits, std::int32_t* ids, float* weights, Stream s);
// Softmax + top-k with an optional bias added to the logits in place first (null: none).
void softmax_topk_bias(float* logits, const float* bias, std::int64_t tokens, int experts, int k, bool renormalize,
                       std::int32_t* ids, float* weights, Stream s);

// ---- capacity -------------------------------------------------------------------------------------
std::size_t capacity_workspace_bytes(std::int64_t tokens, int k, int experts);
// Always writes demand[E] (assignments per expert before drops). With cap > 0 drops past capacity in place
// (ids set to -1) with the reference's semantics: token order keeps the first cap by (t, j); probability keeps
// the cap heaviest, ties to the lower (t, j).
void capacity(std::int32_t* ids, const float* weights, std::int64_t tokens, int k, int experts, std::int64_t cap,
              DropPolicy policy, std::int32_t* demand, void* ws, std::size_t ws_bytes, Stream s);

// ---- dispatch -------------------------------------------------------------------------------------
std::size_t dispatch_workspace_bytes(Strategy st, std::int64_t tokens, int k, int experts);
// The plan of kernels/api.hpp (counts [E], offsets [E+1], row_token [max_rows] with -1 on padding and past the
// last row, inv [T·k]) and, except for nopack, the packed rows xp [max_rows, d] with zero padding rows.
// Everything stays on the device; the row count is offsets[E].
void dispatch(Strategy st, const bf16_t* x, const std::int32_t* ids, std::int64_t tokens, int k, int experts,
              int hidden, int align, std::int32_t* counts, std::int32_t* offsets, std::int32_t* row_token,
              std::int32_t* inv, bf16_t* xp, void* ws, std::size_t ws_bytes, Stream s);

// ---- experts --------------------------------------------------------------------------------------
// grouped: cublasGemmGroupedBatchedEx for each GEMM; streams: one cuBLAS call per expert and GEMM spread over side
// streams, an expert's down GEMM right after its gate/up on the same stream; serial: the same calls in order on one
// stream; fused: our gathering GEMM for x·w1^T with the SiLU gate
// in its epilogue (nopack needs it), then per-expert cuBLAS for h·w2^T; decode: two persistent launches over all
// experts that stream the weights through mma.sync with the tokens as the small side, counts read on the device
// (experts_decode.cuh); batched: every expert padded to the largest count, each GEMM one cublasGemmBatchedEx (falls
// back to streams when the padding would not fit the workspace); mid: decode's design for tens to hundreds of
// tokens per expert, a swap-AB grouped GEMM with the tokens staged in shared memory through a cp.async ring and
// mma.sync (experts_mid.cuh), no host copy of the plan either; wgmma: Hopper's asynchronous tensor cores fed by TMA,
// a warp-specialised persistent grouped GEMM with the SiLU gate in its epilogue, from the device plan
// (experts_wgmma.cuh; sm_90 with d and F multiples of 8, else it runs mid; packed rows, or x's rows gathered with
// cp.async). auto: experts_auto_choice.
enum class ExpertsImpl { Auto, Grouped, Streams, Serial, Fused, Decode, Batched, Mid, Wgmma };
const char* experts_impl_name(ExpertsImpl impl);
ExpertsImpl parse_experts_impl(const std::string& text);  // throws BadInput
std::size_t experts_workspace_bytes(std::int64_t max_rows, int experts, int ffn);
// Auto's table, by mean kept tokens per expert (tpe), the busiest expert's count where known, and d, from the H200
// sweeps in kernels/bench/RESULTS.md. With sm_90 (wgmma_available()), packed or gathered rows:
//   wgmma       d > 2048: tpe <= 384, and every tpe for d < 6144 (no host copy of the plan)
//   decode      d <= 2048: tpe <= 2
//   mid         d <= 2048: 2 < tpe <= 8, where the busiest expert fits mid's 32-token tile (or is not known)
//   wgmma       d <= 2048: every larger tpe, or a busier expert
// Otherwise (no sm_90, or d > 2048 with more tokens):
//   decode      tpe <= 2, or tpe <= 1 for d > 2048 and F <= 4096 (many experts) (no host copy of the plan)
//   streams     d > 2048, F > 4096 (a few large experts), packed rows, where the busiest expert does not fit mid's
//               token tile
//   mid         otherwise up to kMidMaxTokensPerExpert (no host copy of the plan; packed or gathered rows)
//   fused       gathered rows above mid's range
//   mid         d <= 2048 and kMidMaxTokensPerExpert < tpe <= 32, where the busiest expert fits mid's token tile
//               (or is not known)
//   batched     d <= 2048 and tpe <= 1024 otherwise (when the padding does not fit the workspace: grouped)
//   mid         d > 2048, F <= 4096 and kMidMaxTokensPerExpert < tpe <= 32
//   grouped     2048 < d <= 4096, F <= 4096 (many small experts) and 32 < tpe <= 128
//   streams     everything larger
// max_tokens: the busiest expert's kept count where the caller has the plan on the host, -1 where it does not.
constexpr double kMidMaxTokensPerExpert = 12;
ExpertsImpl experts_auto_choice(double tokens_per_expert, int hidden, int ffn, bool packed,
                                std::int64_t max_tokens = -1);
// decode's tokens per chunk for a mean number of tokens per expert (8, 16, 32 or 64); an expert with more tokens
// than one chunk takes several and reads its weights once per chunk.
int decode_chunk_tokens(double tokens_per_expert);
// Whether the current device can run the wgmma kernels (compute capability 9.0 and the driver's tensor-map encoder).
// MOELAB_WGMMA=0: false, as on a device without sm_90 (so an H200 runs the rules and fallbacks of other GPUs).
bool wgmma_available();
// Whether wgmma's 128 × 256 tiles can stage their output in shared memory (from 128 tokens per expert; faster than
// storing it from registers) beside the ring and a tile prefix of this many experts. S3's 256 experts missed it by 20
// bytes of static shared memory until the thirty-seventh session. Call only where wgmma_available().
bool wgmma_staged_fits(int experts);
// mid's tokens per tile (32, 64 or 128; MOELAB_MID_TILE=32|64|128 forces one): an expert with more tokens takes several
// tiles, which read its weights again (mostly from L2: its tiles run side by side).
int mid_tile_tokens(double tokens_per_expert);
// The plan stays on the device: max_rows bounds offsets[E] (workspace and grid sizes) and assignments (T·k, known
// without the plan) picks under auto, with busiest_hint (the busiest expert's expected count, e.g.
// route::busiest_estimate; -1: unknown) as auto's max_tokens. decode and mid never wait for the host; the cuBLAS
// variants copy counts/offsets back first (one stream synchronisation). Returns the implementation that ran.
ExpertsImpl experts_ffn_device(ExpertsImpl impl, const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token,
                               const std::int32_t* counts, const std::int32_t* offsets, std::int64_t max_rows,
                               std::int64_t assignments, int experts, int hidden, int ffn, const bf16_t* w1,
                               const bf16_t* w2, bf16_t* y, void* ws, std::size_t ws_bytes, Stream s,
                               std::int64_t busiest_hint = -1);
// The plan arrays are on the device; counts_host/offsets_host are host copies of counts/offsets (the GEMM
// shapes). xp may be null, then rows are gathered from x through row_token (decode or fused). Padding rows of y
// become zeros. Returns the implementation that ran.
ExpertsImpl experts_ffn(ExpertsImpl impl, const bf16_t* xp, const bf16_t* x, const std::int32_t* row_token,
                        const std::int32_t* counts, const std::int32_t* offsets, const std::int32_t* counts_host,
                        const std::int32_t* offsets_host, int experts, int hidden, int ffn, const bf16_t* w1,
                        const bf16_t* w2, bf16_t* y, void* ws, std::size_t ws_bytes, Stream s);

// While alive, the expert FFN on this thread uses at most `sms` SMs (0: all): the persistent kernels' grids and
// cuBLAS's SM count target. The expert-parallel layer leaves SMs to the NCCL exchanges it overlaps with the experts.
class SmBudget {
  public:
    explicit SmBudget(int sms);
    ~SmBudget();
    SmBudget(const SmBudget&) = delete;
    SmBudget& operator=(const SmBudget&) = delete;

  private:
    int prev_;
};
int device_sms();  // SMs of the current device

// ---- combine --------------------------------------------------------------------------------------
// out[t] = bf16(Σ_j w[t, j]·y[inv[t, j]]), fp32 in j order, no atomics: bit-equal to the CPU reference.
void combine(const bf16_t* y, const std::int32_t* inv, const float* weights, std::int64_t tokens, int k, int hidden,
             bf16_t* out, Stream s);

// ---- measured ceilings (benchmark floors) --------------------------------------------------------
double measure_copy_gbps(std::size_t bytes, int repeats);  // device-to-device copy, read + write bytes
double measure_gemm_tflops(int n, int repeats);            // bf16 n×n×n through cuBLAS, fp32 accumulate
double measure_read_gbps(std::size_t bytes, int repeats);  // 16-byte streaming loads, bytes read only
// The FFN's weight stream without its arithmetic (an experiment's floor: MOELAB_BENCH_STREAM): a_bytes of a and
// b_bytes of b read by one kernel, or (two) a's by one kernel and b's by a second one launched programmatically that
// waits for the first before its loads, as the down GEMM waits for gate/up. 16-byte streaming loads, on the stream.
void stream_read(const void* a, std::size_t a_bytes, const void* b, std::size_t b_bytes, bool two, unsigned* sink,
                 Stream s);
// The FFN's two GEMMs through cuBLAS over all `rows` as if they were one expert's (expert 0's weights; no SiLU, h
// read as it is): what the arithmetic costs at this size without the grouping (MOELAB_BENCH_STREAM's `dense` row).
// ws as experts_ffn's for rows and one expert.
void dense_gemms(const bf16_t* xp, std::int64_t rows, int hidden, int ffn, const bf16_t* w1, const bf16_t* w2,
                 bf16_t* y, void* ws, std::size_t ws_bytes, Stream s);

}  // namespace moe::gpu
