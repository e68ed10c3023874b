// The NCCL regime of the all-to-all: per-peer counts, ncclSend/ncclRecv to every peer inside one group on each
// rank's stream, and the nccl-tests style benchmark of it (pattern-checked data, median and p95 of CUDA events).
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>
#include <vector>

#include "kernels/common/rng.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/nccl/comm.hpp"
#include "kernels/nccl/nccl_api.hpp"

namespace moe::nccl {

void alltoallv_at(Communicator& c, const std::vector<const void*>& send, const std::vector<void*>& recv,
                  const std::vector<std::vector<std::int64_t>>& send_off,
                  const std::vector<std::vector<std::int64_t>>& send_rows,
                  const std::vector<std::vector<std::int64_t>>& recv_off,
                  const std::vector<std::vector<std::int64_t>>& recv_rows, std::size_t row_bytes, const char* what) {
    const int G = c.ranks();
    MOE_ASSERT(int(send.size()) == G && int(recv.size()) == G && int(send_rows.size()) == G &&
                   int(recv_rows.size()) == G && int(send_off.size()) == G && int(recv_off.size()) == G,
               what << ": one buffer and one count row per rank are needed");
    for (int s : c.local()) {
        MOE_ASSERT(int(send_rows[s].size()) == G && int(recv_rows[s].size()) == G && int(send_off[s].size()) == G &&
                       int(recv_off[s].size()) == G,
                   what << ": counts must be G x G");
        for (int r = 0; r < G; ++r) {
            // Both sides decide from their own counts whether to post an operation; if they disagree, one side
            // would wait forever for a partner that never comes. Pairs split over processes are covered by the
            // waits' deadlines instead.
            if (send_rows[s][r] < 0 || recv_rows[s][r] < 0 || (c.is_local(r) && send_rows[s][r] != recv_rows[r][s])) {
                std::ostringstream os;
                os << what << ": rank " << s << " would send " << send_rows[s][r] << " rows to rank " << r
                   << ", which expects " << (c.is_local(r) ? recv_rows[r][s] : recv_rows[s][r])
                   << "; refused before queuing anything";
                throw Error(ErrorKind::Runtime, os.str());
            }
        }
    }
    MOE_NCCL_CHECK(ncclGroupStart());
    ncclResult_t first = ncclSuccess;
    const char* failed = "";
    for (int r : c.local()) {
        c.use(r);
        const char* sp = static_cast<const char*>(send[r]);
        char* rp = static_cast<char*>(recv[r]);
        for (int p = 0; p < G; ++p) {
            // Interleaved per peer, as in NCCL's own all-to-all example; the order inside a group is free.
            const std::size_t sb = std::size_t(send_rows[r][p]) * row_bytes,
                              rb = std::size_t(recv_rows[r][p]) * row_bytes;
            if (sb) {
                ncclResult_t res =
                    ncclSend(sp + std::size_t(send_off[r][p]) * row_bytes, sb, ncclUint8, p, c.comm(r), c.stream(r));
                if (res != ncclSuccess && res != ncclInProgress && first == ncclSuccess)
                    first = res, failed = "ncclSend";
            }
            if (rb) {
                ncclResult_t res =
                    ncclRecv(rp + std::size_t(recv_off[r][p]) * row_bytes, rb, ncclUint8, p, c.comm(r), c.stream(r));
                if (res != ncclSuccess && res != ncclInProgress && first == ncclSuccess)
                    first = res, failed = "ncclRecv";
            }
        }
    }
    // The group is always closed, also after a failed call inside it: an open group would swallow every later call.
    ncclResult_t end = ncclGroupEnd();
    if (first != ncclSuccess) {
        std::ostringstream os;
        os << what << ": " << failed << " failed: " << ncclGetErrorString(first);
        c.fail(ErrorKind::Runtime, os.str());
    }
    if (end != ncclSuccess && end != ncclInProgress) {
        std::ostringstream os;
        os << what << ": ncclGroupEnd failed: " << ncclGetErrorString(end);
        c.fail(ErrorKind::Runtime, os.str());
    }
    c.wait_ready(what);  // non-blocking: the operations are on the streams only once every rank leaves InProgress
}

void alltoallv(Communicator& c, const std::vector<const void*>& send, const std::vector<void*>& recv,
               const std::vector<std::vector<std::int64_t>>& send_rows,
               const std::vector<std::vector<std::int64_t>>& recv_rows, std::size_t row_bytes, const char* what) {
    const int G = c.ranks();
    MOE_ASSERT(int(send_rows.size()) == G && int(recv_rows.size()) == G, what << ": one count row per rank is needed");
    std::vector<std::vector<std::int64_t>> so(G, std::vector<std::int64_t>(G, 0)), ro = so;
    for (int r : c.local()) {
        MOE_ASSERT(int(send_rows[r].size()) == G && int(recv_rows[r].size()) == G, what << ": counts must be G x G");
        for (int p = 1; p < G; ++p)
            so[r][p] = so[r][p - 1] + send_rows[r][p - 1], ro[r][p] = ro[r][p - 1] + recv_rows[r][p - 1];
    }
    alltoallv_at(c, send, recv, so, send_rows, ro, recv_rows, row_bytes, what);
}

void barrier(Communicator& c, const std::vector<float*>& scratch, const char* what) {
    MOE_NCCL_CHECK(ncclGroupStart());
    ncclResult_t first = ncclSuccess;
    for (int r : c.local()) {
        c.use(r);
        ncclResult_t res = ncclAllReduce(scratch[r], scratch[r], 1, ncclFloat32, ncclSum, c.comm(r), c.stream(r));
        if (res != ncclSuccess && res != ncclInProgress && first == ncclSuccess) first = res;
    }
    ncclResult_t end = ncclGroupEnd();
    if (first != ncclSuccess || (end != ncclSuccess && end != ncclInProgress)) {
        std::ostringstream os;
        os << what << ": ncclAllReduce failed: " << ncclGetErrorString(first != ncclSuccess ? first : end);
        c.fail(ErrorKind::Runtime, os.str());
    }
    c.wait_ready(what);
}

void allgather(Communicator& c, const std::vector<void*>& buf, std::size_t bytes, const char* what) {
    MOE_NCCL_CHECK(ncclGroupStart());
    ncclResult_t first = ncclSuccess;
    for (int r : c.local()) {
        c.use(r);
        char* b = static_cast<char*>(buf[r]);
        ncclResult_t res = ncclAllGather(b + std::size_t(r) * bytes, b, bytes, ncclUint8, c.comm(r), c.stream(r));
        if (res != ncclSuccess && res != ncclInProgress && first == ncclSuccess) first = res;
    }
    ncclResult_t end = ncclGroupEnd();
    if (first != ncclSuccess || (end != ncclSuccess && end != ncclInProgress)) {
        std::ostringstream os;
        os << what << ": ncclAllGather failed: " << ncclGetErrorString(first != ncclSuccess ? first : end);
        c.fail(ErrorKind::Runtime, os.str());
    }
    c.wait_ready(what);
}

// ---- benchmark ---------------------------------------------------------------------------------------------
namespace {

// The word rank `src` sends to rank `dst` at index i: any lost, duplicated or misplaced chunk shows up.
__device__ __forceinline__ std::uint32_t pattern(int src, int dst, std::uint64_t i) {
    return static_cast<std::uint32_t>(rng_hash(0xA11A11ull, (std::uint64_t(src) << 32) | std::uint32_t(dst), i) >> 32);
}

__global__ void fill_pattern_kernel(std::uint32_t* buf, int src, std::size_t per_peer, std::size_t n) {
    for (std::size_t w = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; w < n;
         w += std::size_t(gridDim.x) * blockDim.x)
        buf[w] = pattern(src, int(w / per_peer), w % per_peer);
}

__global__ void check_pattern_kernel(const std::uint32_t* buf, int dst, std::size_t per_peer, std::size_t n,
                                     unsigned long long* wrong) {
    unsigned long long bad = 0;
    for (std::size_t w = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; w < n;
         w += std::size_t(gridDim.x) * blockDim.x)
        bad += buf[w] != pattern(int(w / per_peer), dst, w % per_peer);
    if (bad) atomicAdd(wrong, bad);
}

// Holds a stream for `cycles` clocks: queued ahead of the timed loop it lets the host enqueue every iteration
// before the GPU starts, so each event pair spans the exchange itself, not the host's enqueue latency. It ends by
// itself: if the host is slower, the GPU just starts early (no flag, so no way to deadlock on the host).
__global__ void spin_kernel(long long cycles) {
    const long long t0 = clock64();
    while (clock64() - t0 < cycles) {
    }
}

unsigned grid_of(std::size_t n) { return unsigned(std::min<std::size_t>((n + 255) / 256, 4096)); }

// q = 0.5 gives v[n/2] (the convention of the other benchmarks); otherwise the ceil(q·n)-th smallest.
double percentile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    if (v.empty()) return 0;
    if (q == 0.5) return v[v.size() / 2];
    std::size_t i = std::size_t(std::ceil(q * double(v.size())));
    return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
}

struct RankBuffers {
    std::uint32_t* send = nullptr;
    std::uint32_t* recv = nullptr;
    unsigned long long* wrong = nullptr;
    float* gather = nullptr;  // [G][iters + 2]: every rank's spans and wrong words
    std::vector<cudaEvent_t> start, stop;
};

}  // namespace

std::vector<A2aPoint> bench_alltoall(int ranks, const std::vector<std::size_t>& sizes, int iters, double timeout,
                                     int warmup) {
    if (iters < 1 || iters > 100000) MOE_BAD_INPUT("iterations " << iters << " must be in [1, 100000]");
    if (warmup < 0 || warmup > 10000) MOE_BAD_INPUT("warm-up " << warmup << " must be in [0, 10000]");
    if (!(timeout > 0 && timeout <= 3600)) MOE_BAD_INPUT("timeout " << timeout << " s must be in (0, 3600]");
    if (sizes.empty()) MOE_BAD_INPUT("no sizes to run");
    if (ranks < 1) MOE_BAD_INPUT("ranks " << ranks << " must be >= 1");
    const int G = ranks;
    std::size_t max_words = 0;
    for (std::size_t s : sizes) {
        if (s < 1 || s > (std::size_t(1) << 34)) MOE_BAD_INPUT("size " << s << " bytes must be in [1, 16 GiB]");
        max_words = std::max(max_words, std::max<std::size_t>(s / (4 * std::size_t(G)), 1) * G);
    }

    auto lock = shared_lock();
    DeviceRestore restore;
    Communicator& c = shared_communicator(G);
    c.set_timeout_s(timeout);
    std::vector<RankBuffers> b(G);
    auto release = [&] {
        for (int r : c.local()) {
            cudaSetDevice(c.device(r));
            cudaFree(b[r].send), cudaFree(b[r].recv), cudaFree(b[r].wrong), cudaFree(b[r].gather);
            for (cudaEvent_t e : b[r].start) cudaEventDestroy(e);
            for (cudaEvent_t e : b[r].stop) cudaEventDestroy(e);
        }
    };
    std::vector<A2aPoint> points;
    std::vector<int> clock_khz(G, 1980000);
    try {
        for (int r : c.local()) {
            c.use(r);
            MOE_CUDA_CHECK(cudaDeviceGetAttribute(&clock_khz[r], cudaDevAttrClockRate, c.device(r)));
            MOE_CUDA_CHECK(cudaMalloc(&b[r].send, max_words * 4));
            MOE_CUDA_CHECK(cudaMalloc(&b[r].recv, max_words * 4));
            MOE_CUDA_CHECK(cudaMalloc(&b[r].wrong, sizeof(unsigned long long)));
            MOE_CUDA_CHECK(cudaMalloc(&b[r].gather, sizeof(float) * (std::size_t(iters) + 2) * G));
            b[r].start.resize(iters), b[r].stop.resize(iters);
            for (int i = 0; i < iters; ++i) {
                MOE_CUDA_CHECK(cudaEventCreate(&b[r].start[i]));
                MOE_CUDA_CHECK(cudaEventCreate(&b[r].stop[i]));
            }
        }
        for (std::size_t size : sizes) {
            const std::size_t per_peer = std::max<std::size_t>(size / (4 * std::size_t(G)), 1), n = per_peer * G;
            std::vector<const void*> send(G);
            std::vector<void*> recv(G);
            for (int r : c.local()) send[r] = b[r].send, recv[r] = b[r].recv;
            std::vector<std::vector<std::int64_t>> rows(G, std::vector<std::int64_t>(G, std::int64_t(per_peer)));
            auto poison_recv = [&] {
                for (int r : c.local()) {
                    c.use(r);
                    MOE_CUDA_CHECK(cudaMemsetAsync(b[r].recv, 0xFF, n * 4, c.stream(r)));
                }
            };
            auto check = [&] {
                for (int r : c.local()) {
                    c.use(r);
                    check_pattern_kernel<<<grid_of(n), 256, 0, c.stream(r)>>>(b[r].recv, r, per_peer, n, b[r].wrong);
                    MOE_CUDA_LAUNCH_CHECK("check_pattern_kernel");
                }
            };
            for (int r : c.local()) {
                c.use(r);
                MOE_CUDA_CHECK(cudaMemsetAsync(b[r].wrong, 0, sizeof(unsigned long long), c.stream(r)));
                fill_pattern_kernel<<<grid_of(n), 256, 0, c.stream(r)>>>(b[r].send, r, per_peer, n);
                MOE_CUDA_LAUNCH_CHECK("fill_pattern_kernel");
            }
            // Check first: one exchange into poisoned buffers, verified before anything is timed.
            poison_recv();
            alltoallv(c, send, recv, rows, rows, 4, "the checked all-to-all");
            check();
            const auto w0 = std::chrono::steady_clock::now();
            for (int i = 0; i < warmup; ++i) alltoallv(c, send, recv, rows, rows, 4, "a warm-up all-to-all");
            const double host_s =
                warmup ? std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count() / warmup
                       : 50e-6;  // the host's enqueue time per exchange
            poison_recv();       // the last timed exchange must rewrite every word: checked again after timing
            const double spin_s = std::clamp(2.0 * host_s * iters + 2e-3, 2e-3, 2.0);
            for (int r : c.local()) {
                c.use(r);
                spin_kernel<<<1, 1, 0, c.stream(r)>>>(static_cast<long long>(spin_s * clock_khz[r] * 1e3));
                MOE_CUDA_LAUNCH_CHECK("spin_kernel");
            }
            for (int i = 0; i < iters; ++i) {
                for (int r : c.local()) {
                    c.use(r);
                    MOE_CUDA_CHECK(cudaEventRecord(b[r].start[i], c.stream(r)));
                }
                alltoallv(c, send, recv, rows, rows, 4, "a timed all-to-all");
                for (int r : c.local()) {
                    c.use(r);
                    MOE_CUDA_CHECK(cudaEventRecord(b[r].stop[i], c.stream(r)));
                }
            }
            check();
            c.wait_streams("the timed all-to-alls and their check");
            A2aPoint pt;
            pt.bytes_per_rank = n * 4;
            pt.count = n;
            pt.iters = iters;
            // Every rank's spans and wrong words, gathered over NCCL so that one process per GPU sees them all too.
            std::vector<float> mine(std::size_t(iters) + 2);
            const std::size_t per = sizeof(float) * mine.size();
            std::vector<void*> gb(G, nullptr);
            for (int r : c.local()) {
                c.use(r);
                for (int i = 0; i < iters; ++i)
                    MOE_CUDA_CHECK(cudaEventElapsedTime(&mine[i], b[r].start[i], b[r].stop[i]));
                unsigned long long wrong = 0;
                MOE_CUDA_CHECK(cudaMemcpy(&wrong, b[r].wrong, sizeof wrong, cudaMemcpyDeviceToHost));
                mine[iters] = float(wrong % (1u << 20)), mine[iters + 1] = float(wrong >> 20);  // exact in floats
                MOE_CUDA_CHECK(cudaMemcpy(reinterpret_cast<char*>(b[r].gather) + std::size_t(r) * per, mine.data(), per,
                                          cudaMemcpyHostToDevice));
                gb[r] = b[r].gather;
            }
            allgather(c, gb, per, "gathering the all-to-all times of every rank");
            c.wait_streams("gathering the all-to-all times of every rank");
            std::vector<float> all(mine.size() * G);
            const int r0 = c.local().front();
            c.use(r0);
            MOE_CUDA_CHECK(cudaMemcpy(all.data(), b[r0].gather, per * G, cudaMemcpyDeviceToHost));
            std::vector<double> ms(iters, 0.0);
            for (int r = 0; r < G; ++r) {
                const float* v = all.data() + std::size_t(r) * mine.size();
                for (int i = 0; i < iters; ++i) ms[i] = std::max(ms[i], double(v[i]));  // ends with its slowest rank
                pt.wrong += std::int64_t(v[iters]) + (std::int64_t(v[iters + 1]) << 20);
            }
            pt.time_ms_median = percentile(ms, 0.5);
            pt.p95 = percentile(ms, 0.95);
            pt.p99 = percentile(ms, 0.99);
            pt.min_ms = *std::min_element(ms.begin(), ms.end());
            pt.algbw = pt.time_ms_median > 0 ? double(pt.bytes_per_rank) / (pt.time_ms_median * 1e-3) / 1e9 : 0;
            pt.busbw = pt.algbw * double(G - 1) / double(G);
            points.push_back(pt);
        }
    } catch (...) {
        c.abort();  // before cudaFree, which would wait on a kernel stuck on a lost peer
        release();
        throw;
    }
    release();
    return points;
}

}  // namespace moe::nccl
