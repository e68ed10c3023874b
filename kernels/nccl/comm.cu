// The nccl backend's communicator: G non-blocking NCCL communicators made in one group from one thread, one
// stream per rank, and every wait a poll against a deadline that aborts the communicators when it passes.
#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "kernels/cuda/check.cuh"
#include "kernels/nccl/comm.hpp"
#include "kernels/nccl/nccl_api.hpp"

namespace moe::nccl {

namespace {

using Clock = std::chrono::steady_clock;

double initial_timeout() {
    const char* s = std::getenv("MOELAB_NCCL_TIMEOUT_S");
    if (s && *s) {
        double v = std::strtod(s, nullptr);
        if (v > 0 && v <= 3600) return v;
    }
    return 30.0;
}
double g_timeout_s = initial_timeout();

std::string last_error() {
    const char* m = ncclGetLastError(nullptr);
    return m && *m ? std::string("; NCCL says: ") + m : std::string();
}

// The lent multi-GPU machines must keep NVLink multicast off (a program using it can take the host's shared GPUs
// out of service); NCCL reads this once, at its first communicator, so it is set before anything else.
void keep_nvls_off() {
    if (!std::getenv("NCCL_NVLS_ENABLE")) setenv("NCCL_NVLS_ENABLE", "0", 0);
}

}  // namespace

[[noreturn]] void throw_nccl(ncclResult_t res, const char* call, const char* where) {
    std::ostringstream os;
    os << where << ": " << call << " failed: " << ncclGetErrorString(res) << last_error();
    throw Error(ErrorKind::Runtime, os.str());
}

bool built() { return true; }

int usable_gpus() {
    if (const ProcessWorld* w = process_world()) return w->size;  // one GPU per process, the launcher's -np
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}

std::string version() {
    int v = 0;
    if (ncclGetVersion(&v) != ncclSuccess) return "";
    // NCCL_VERSION(X,Y,Z) is X*10000 + Y*100 + Z from 2.9 on.
    std::ostringstream os;
    os << v / 10000 << "." << (v / 100) % 100 << "." << v % 100;
    return os.str();
}

double timeout_s() { return g_timeout_s; }

bool blocking_comms() {
    static const bool on = [] {
        const char* v = std::getenv("MOELAB_NCCL_BLOCKING");
        return v && std::string(v) == "1";
    }();
    return on;
}

void set_timeout_s(double seconds) {
    if (!(seconds > 0 && seconds <= 3600)) MOE_BAD_INPUT("NCCL timeout " << seconds << " s must be in (0, 3600]");
    g_timeout_s = seconds;
}

// ---- Communicator ---------------------------------------------------------------------------------------
namespace {

void check_devices(int ranks, int needed, const char* what) {
    int found = 0;
    cudaError_t err = cudaGetDeviceCount(&found);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        std::ostringstream os;
        os << what << " over " << ranks << " GPUs needs CUDA devices, but the CUDA runtime says "
           << cudaGetErrorName(err) << " (" << cudaGetErrorString(err) << "); 0 GPUs found";
        throw Error(ErrorKind::NoDevice, os.str());
    }
    if (found < needed) {
        std::ostringstream os;
        os << what << " over " << ranks << " GPUs was asked for, but only " << found << " GPU"
           << (found == 1 ? " was" : "s were") << " found";
        if (needed != ranks) os << " on this host (device " << needed - 1 << " needed)";
        throw Error(ErrorKind::NoDevice, os.str());
    }
}

}  // namespace

void Communicator::init_streams_and_names() {
    std::map<std::string, int> names;
    for (int r : local_) {
        use(r);
        MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&streams_[r], cudaStreamNonBlocking));
        cudaDeviceProp p{};
        MOE_CUDA_CHECK(cudaGetDeviceProperties(&p, devices_[r]));
        names[p.name]++;
    }
    for (auto& [name, n] : names)
        device_names_ += (device_names_.empty() ? "" : " + ") + std::to_string(n) + "x " + name;
}

Communicator::Communicator(int ranks, double timeout) : ranks_(ranks), timeout_s_(timeout) {
    if (ranks < 1) MOE_BAD_INPUT("ranks " << ranks << " must be >= 1");
    if (!(timeout > 0)) MOE_BAD_INPUT("NCCL timeout " << timeout << " s must be > 0");
    check_devices(ranks, ranks, "an NCCL communicator");
    keep_nvls_off();
    comms_.assign(ranks, nullptr);
    streams_.assign(ranks, nullptr);
    devices_.resize(ranks);
    for (int r = 0; r < ranks; ++r) local_.push_back(r), devices_[r] = r;
    int saved = 0;
    MOE_CUDA_CHECK(cudaGetDevice(&saved));
    try {
        init_streams_and_names();
        ncclUniqueId id;
        MOE_NCCL_CHECK(ncclGetUniqueId(&id));
        ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
        config.blocking = blocking_comms() ? 1 : 0;  // non-blocking: every wait polls, a stuck peer times out
        MOE_NCCL_CHECK(ncclGroupStart());
        ncclResult_t first = ncclSuccess;
        for (int r = 0; r < ranks; ++r) {
            use(r);  // ncclCommInitRank* binds the communicator to the current device
            ncclResult_t res = ncclCommInitRankConfig(&comms_[r], ranks, id, r, &config);
            if (res != ncclSuccess && res != ncclInProgress && first == ncclSuccess) first = res;
        }
        ncclResult_t end = ncclGroupEnd();  // always closes the group, also after a failed init call
        if (first != ncclSuccess) throw_nccl(first, "ncclCommInitRankConfig", __FILE__);
        if (end != ncclSuccess && end != ncclInProgress) throw_nccl(end, "ncclGroupEnd (communicator init)", __FILE__);
        wait_ready("NCCL communicator init");
    } catch (...) {
        abort();
        for (cudaStream_t& s : streams_)
            if (s) cudaStreamDestroy(s), s = nullptr;
        cudaSetDevice(saved);
        throw;
    }
    cudaSetDevice(saved);
}

Communicator::Communicator(int ranks, int rank, int device, const ncclUniqueId& id, double timeout)
    : ranks_(ranks), timeout_s_(timeout) {
    if (ranks < 1 || rank < 0 || rank >= ranks) MOE_BAD_INPUT("rank " << rank << " of " << ranks << " is not a rank");
    if (!(timeout > 0)) MOE_BAD_INPUT("NCCL timeout " << timeout << " s must be > 0");
    if (device < 0) MOE_BAD_INPUT("CUDA device " << device << " must be >= 0");
    check_devices(ranks, device + 1, "an NCCL communicator (one process per GPU)");
    keep_nvls_off();
    comms_.assign(ranks, nullptr);
    streams_.assign(ranks, nullptr);
    devices_.assign(ranks, -1);
    devices_[rank] = device;
    local_ = {rank};
    int saved = 0;
    MOE_CUDA_CHECK(cudaGetDevice(&saved));
    try {
        init_streams_and_names();
        ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
        config.blocking = blocking_comms() ? 1 : 0;
        use(rank);
        MOE_NCCL_CHECK(ncclCommInitRankConfig(&comms_[rank], ranks, id, rank, &config));
        wait_ready("NCCL communicator init (every process must join)");
    } catch (...) {
        abort();
        for (cudaStream_t& s : streams_)
            if (s) cudaStreamDestroy(s), s = nullptr;
        cudaSetDevice(saved);
        throw;
    }
    cudaSetDevice(saved);
}

Communicator::~Communicator() {
    if (!aborted_) {
        // A normal destroy needs every rank's queued work finished; if it does not finish, abort instead.
        try {
            wait_streams("the last operations before destroying the communicator");
            for (int r : local_)
                if (comms_[r]) {
                    use(r);
                    ncclCommDestroy(comms_[r]);  // intra-process ranks: the last destroy frees them all
                    comms_[r] = nullptr;
                }
        } catch (...) {
            abort();
        }
    }
    for (int r : local_)
        if (streams_[r]) {
            cudaSetDevice(devices_[r]);
            cudaStreamDestroy(streams_[r]);
        }
}

void Communicator::use(int r) const {
    MOE_ASSERT(is_local(r), "rank " << r << " is not driven by this process");
    MOE_CUDA_CHECK(cudaSetDevice(devices_[r]));
}

namespace {
std::atomic<bool> g_any_aborted{false};
}  // namespace

bool process_aborted() { return g_any_aborted.load(); }

void Communicator::abort() noexcept {
    if (aborted_) return;
    aborted_ = true;
    g_any_aborted = true;
    for (int r : local_)
        if (comms_[r]) {
            cudaSetDevice(devices_[r]);
            ncclCommAbort(comms_[r]);  // tells this rank's kernels to quit, then frees the communicator
            comms_[r] = nullptr;
        }
}

void Communicator::fail(ErrorKind kind, const std::string& msg) {
    abort();
    throw Error(kind, msg + " (the NCCL communicator was aborted; the next run makes a new one)");
}

template <class Done>
void Communicator::poll(const char* what, Done done) {
    if (aborted_) throw Error(ErrorKind::Runtime, std::string(what) + ": the NCCL communicator was aborted earlier");
    const auto start = Clock::now();
    const auto deadline =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s_));
    for (int spin = 0;; ++spin) {
        // Async errors first: a failed peer shows up here while its partner still looks busy.
        for (int r : local_) {
            ncclResult_t st = ncclSuccess;
            ncclResult_t res = comms_[r] ? ncclCommGetAsyncError(comms_[r], &st) : ncclInvalidArgument;
            if (res != ncclSuccess) st = res;
            if (st != ncclSuccess && st != ncclInProgress) {
                std::ostringstream os;
                os << what << ": rank " << r << " reported " << ncclGetErrorString(st) << last_error();
                fail(ErrorKind::Runtime, os.str());
            }
        }
        int pending = -1;
        if (done(pending)) return;
        if (Clock::now() > deadline) {
            std::ostringstream os;
            os << "timed out after " << timeout_s_ << " s waiting for " << what;
            if (pending >= 0) os << " (rank " << pending << " still busy)";
            fail(ErrorKind::Runtime, os.str());
        }
        // Spin briefly (most waits end within microseconds), then back off so the host thread is not a hot loop.
        if (spin < 2000)
            std::this_thread::yield();
        else
            std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
}

void Communicator::wait_ready(const char* what) {
    poll(what, [&](int& pending) {
        for (int r : local_) {
            ncclResult_t st = ncclSuccess;
            ncclCommGetAsyncError(comms_[r], &st);
            if (st == ncclInProgress) return pending = r, false;
        }
        return true;
    });
}

void Communicator::group_end(const char* what) {
    ncclResult_t end = ncclGroupEnd();
    if (end != ncclSuccess && end != ncclInProgress) {
        std::ostringstream os;
        os << what << ": ncclGroupEnd failed: " << ncclGetErrorString(end) << last_error();
        fail(ErrorKind::Runtime, os.str());
    }
    wait_ready(what);
}

void Communicator::wait_streams(const char* what) {
    poll(what, [&](int& pending) {
        for (int r : local_) {
            use(r);
            cudaError_t e = cudaStreamQuery(streams_[r]);
            if (e == cudaErrorNotReady) return pending = r, false;
            if (e != cudaSuccess) {
                (void)cudaGetLastError();
                std::ostringstream os;
                os << what << ": rank " << r << "'s stream failed: " << cudaGetErrorName(e) << " ("
                   << cudaGetErrorString(e) << ")";
                fail(ErrorKind::Runtime, os.str());
            }
        }
        return true;
    });
}

void Communicator::wait_events(const std::vector<cudaEvent_t>& events, const char* what) {
    MOE_ASSERT(int(events.size()) == ranks_, "wait_events needs one event per rank");
    poll(what, [&](int& pending) {
        for (int r : local_) {
            use(r);
            cudaError_t e = cudaEventQuery(events[r]);
            if (e == cudaErrorNotReady) return pending = r, false;
            if (e != cudaSuccess) {
                (void)cudaGetLastError();
                std::ostringstream os;
                os << what << ": rank " << r << ": " << cudaGetErrorName(e) << " (" << cudaGetErrorString(e) << ")";
                fail(ErrorKind::Runtime, os.str());
            }
        }
        return true;
    });
}

// ---- the shared communicator ------------------------------------------------------------------------------
namespace {
std::mutex g_shared_mutex;
// Never destroyed at exit on purpose: tearing NCCL down during static destruction races the CUDA runtime's own
// teardown (see kernels/cuda/context.cuh); the process exit ends NCCL's threads anyway.
Communicator* g_shared = nullptr;
}  // namespace

std::unique_lock<std::mutex> shared_lock() { return std::unique_lock<std::mutex>(g_shared_mutex); }

Communicator& shared_communicator(int ranks) {
    if (g_shared && (g_shared->aborted() || g_shared->ranks() != ranks)) drop_shared_communicator();
    if (!g_shared) {
        std::unique_ptr<Communicator> c;
        if (const ProcessWorld* w = process_world()) {
            if (ranks != w->size)
                MOE_BAD_INPUT("--ranks " << ranks << " under an MPI launcher of " << w->size
                                         << " processes: one process drives one rank, so ranks must equal mpirun's -np "
                                         << w->size);
            // Every process checks its GPU (and rank 0 makes the id) before any waits on the others.
            std::string why;
            int found = 0;
            if (cudaGetDeviceCount(&found) != cudaSuccess) (void)cudaGetLastError(), found = 0;
            if (found <= w->device) {
                std::ostringstream os;
                os << "rank " << w->rank << " of " << w->size << " (one process per GPU) needs CUDA device "
                   << w->device << " of its host, but " << found << " GPU" << (found == 1 ? " was" : "s were")
                   << " found there";
                why = os.str();
            }
            ncclUniqueId id{};
            if (why.empty() && w->rank == 0) {
                keep_nvls_off();
                ncclResult_t res = ncclGetUniqueId(&id);
                if (res != ncclSuccess) why = std::string("ncclGetUniqueId failed: ") + ncclGetErrorString(res);
            }
            const bool all_ok = w->share_id(id, why.empty());
            if (!why.empty()) throw Error(ErrorKind::NoDevice, why);
            if (!all_ok)
                throw Error(ErrorKind::Runtime, "rank " + std::to_string(w->rank) +
                                                    ": another process of the MPI job could not start its NCCL rank "
                                                    "(its own error says why)");
            c = std::make_unique<Communicator>(w->size, w->rank, w->device, id, g_timeout_s);
        } else {
            c = std::make_unique<Communicator>(ranks, g_timeout_s);
        }
        // First connections between ranks are set up by the first operation that uses them (hundreds of ms):
        // a small all-to-all now keeps that out of the first timed run.
        std::vector<void*> bufs(ranks, nullptr);
        auto free_bufs = [&] {
            for (int r : c->local())
                if (bufs[r]) cudaSetDevice(c->device(r)), cudaFree(bufs[r]), bufs[r] = nullptr;
        };
        try {
            const std::size_t row = 1 << 20;  // 1 MiB per peer: large enough to open the channels big messages use
            for (int r : c->local()) {
                c->use(r);
                MOE_CUDA_CHECK(cudaMalloc(&bufs[r], 2 * row * ranks));
                MOE_CUDA_CHECK(cudaMemsetAsync(bufs[r], 0, 2 * row * ranks, c->stream(r)));
            }
            std::vector<const void*> send(ranks);
            std::vector<void*> recv(ranks);
            for (int r : c->local()) send[r] = bufs[r], recv[r] = static_cast<char*>(bufs[r]) + row * ranks;
            std::vector<std::vector<std::int64_t>> ones(ranks, std::vector<std::int64_t>(ranks, 1));
            alltoallv(*c, send, recv, ones, ones, row, "the warm-up all-to-all after communicator init");
            c->wait_streams("the warm-up all-to-all after communicator init");
        } catch (...) {
            c->abort();  // before cudaFree, which would wait on a stuck kernel
            free_bufs();
            throw;
        }
        free_bufs();
        g_shared = c.release();
    }
    g_shared->set_timeout_s(g_timeout_s);
    return *g_shared;
}

void drop_shared_communicator() {
    delete g_shared;
    g_shared = nullptr;
}

}  // namespace moe::nccl
