// A communicator over G local GPUs driven from one thread: one non-blocking NCCL communicator and one stream per
// rank, and waits that poll with a deadline, so a lost peer becomes an aborted communicator and an error, not a hang.
#pragma once
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/common/error.hpp"

namespace moe::nccl {

// Throws Runtime naming the call, file:line, NCCL's string and its last error message.
[[noreturn]] void throw_nccl(ncclResult_t res, const char* call, const char* where);

}  // namespace moe::nccl

// For calls on non-blocking communicators ncclInProgress is not an error: the caller waits with wait_ready().
#define MOE_NCCL_CHECK(call)                                                                 \
    do {                                                                                     \
        ncclResult_t moe_nres_ = (call);                                                     \
        if (moe_nres_ != ncclSuccess && moe_nres_ != ncclInProgress)                         \
            ::moe::nccl::throw_nccl(moe_nres_, #call, __FILE__ ":" MOE_STRINGIFY(__LINE__)); \
    } while (0)

namespace moe::nccl {

class Communicator {
  public:
    // One process drives every rank: ranks 0..G-1 on CUDA devices 0..G-1. BadInput for G < 1, NoDevice when fewer
    // than G GPUs exist.
    Communicator(int ranks, double timeout_s);
    // One process per GPU (mpirun): this process drives rank `rank` of `ranks` on CUDA device `device`; every
    // process passes the same `id` (rank 0's ncclGetUniqueId, broadcast by the launcher).
    Communicator(int ranks, int rank, int device, const ncclUniqueId& id, double timeout_s);
    ~Communicator();
    Communicator(const Communicator&) = delete;
    Communicator& operator=(const Communicator&) = delete;

    int ranks() const { return ranks_; }
    // The ranks this process drives, ascending: all of them in one process, one under mpirun. Every per-rank
    // accessor below takes a global rank and is valid only for these.
    const std::vector<int>& local() const { return local_; }
    bool is_local(int r) const { return r >= 0 && r < ranks_ && devices_[r] >= 0; }
    bool multi_process() const { return int(local_.size()) < ranks_; }
    int device(int r) const { return devices_[r]; }
    ncclComm_t comm(int r) const { return comms_[r]; }
    cudaStream_t stream(int r) const { return streams_[r]; }
    void use(int r) const;  // cudaSetDevice of rank r: before every per-rank CUDA call
    double timeout_s() const { return timeout_s_; }
    void set_timeout_s(double s) { timeout_s_ = s; }
    bool aborted() const { return aborted_; }
    std::string device_names() const { return device_names_; }
    void set_device_names(std::string s) { device_names_ = std::move(s); }

    // ncclGroupEnd, then wait_ready: after it every rank's operations of the group are on its stream.
    void group_end(const char* what);
    // Polls ncclCommGetAsyncError of every local rank until none is in progress.
    void wait_ready(const char* what);
    // Polls until every local rank's stream is idle; also watches for NCCL async errors meanwhile.
    void wait_streams(const char* what);
    // Polls until events[r] (recorded on rank r) has completed for every local rank (indexed by global rank).
    void wait_events(const std::vector<cudaEvent_t>& events, const char* what);

    // Aborts every rank's communicator (idempotent), then throws `kind` with `msg`.
    [[noreturn]] void fail(ErrorKind kind, const std::string& msg);
    void abort() noexcept;

  private:
    template <class Done>
    void poll(const char* what, Done done);
    void init_streams_and_names();

    int ranks_ = 0;
    double timeout_s_ = 30.0;
    bool aborted_ = false;
    std::string device_names_;
    std::vector<int> local_;
    std::vector<int> devices_;  // [G] CUDA device of each local rank, -1 for ranks of other processes
    std::vector<ncclComm_t> comms_;
    std::vector<cudaStream_t> streams_;
};

// One process per GPU: set up by world.cpp when this process was started by an MPI launcher (mpirun sets
// OMPI_COMM_WORLD_SIZE) and the build has MPI. Null in a single process, which then drives every rank itself.
struct ProcessWorld {
    int rank = 0, size = 1;
    int device = 0;  // CUDA device: the rank's index among this host's processes
    // Rank 0's id to every process (MPI_Bcast), and whether every process passed ok = true (MPI_Allreduce): a
    // process that cannot start says so to the others instead of leaving them waiting for it.
    std::function<bool(ncclUniqueId&, bool ok)> share_id;
};
const ProcessWorld* process_world();
// MOELAB_NCCL_BLOCKING=1: blocking communicators. NCCL then queues a group inline (no helper thread per
// ncclGroupEnd: less host time per exchange), but a group that must set up a connection waits for the peer without
// a deadline; the waits on streams and events keep theirs. Default: non-blocking, every wait with a deadline.
bool blocking_comms();

// True once any communicator of this process was aborted (a timeout or a peer's failure).
bool process_aborted();

// The communicator of `ranks` GPUs shared by the runs of this process: made on first use (its setup and the first
// connections cost hundreds of milliseconds) and made again after an abort. Not thread-safe by itself: callers hold
// shared_lock().
Communicator& shared_communicator(int ranks);
std::unique_lock<std::mutex> shared_lock();
void drop_shared_communicator();

// Restores the caller's current CUDA device: the per-rank loops leave the last rank's device current, and the
// single-GPU backend runs on whatever device is current.
class DeviceRestore {
  public:
    DeviceRestore() { cudaGetDevice(&dev_); }
    ~DeviceRestore() { cudaSetDevice(dev_); }

  private:
    int dev_ = 0;
};

// Aborts the communicator if the scope is left by an exception: declared after the buffers a run allocates, it
// runs before their cudaFree, which would otherwise wait forever on a peer that is stuck in an NCCL kernel.
class AbortOnUnwind {
  public:
    explicit AbortOnUnwind(Communicator& c) : c_(c), uncaught_(std::uncaught_exceptions()) {}
    ~AbortOnUnwind() {
        if (armed_ && std::uncaught_exceptions() > uncaught_) c_.abort();
    }
    void disarm() { armed_ = false; }  // at a quiescent point: nothing is queued, the communicator stays usable

  private:
    Communicator& c_;
    int uncaught_;
    bool armed_ = true;
};

// Variable all-to-all of rows of `row_bytes`: rank r sends send_rows[r][p] rows to rank p, taken consecutively
// from send[r] in peer order, and receives recv_rows[r][p] rows from rank p into recv[r] in peer order. One
// ncclGroupStart/End over every local rank's ncclSend/ncclRecv (zero-row pairs skipped), on each rank's stream.
// Vectors are indexed by global rank; entries of ranks of other processes are ignored. Where both sides are local,
// send_rows[p][r] must equal recv_rows[r][p]: a mismatch is refused before anything is queued (it would hang).
void alltoallv(Communicator& c, const std::vector<const void*>& send, const std::vector<void*>& recv,
               const std::vector<std::vector<std::int64_t>>& send_rows,
               const std::vector<std::vector<std::int64_t>>& recv_rows, std::size_t row_bytes, const char* what);

// The same with explicit offsets (in rows) of each peer's part in the send and receive buffers.
void alltoallv_at(Communicator& c, const std::vector<const void*>& send, const std::vector<void*>& recv,
                  const std::vector<std::vector<std::int64_t>>& send_off,
                  const std::vector<std::vector<std::int64_t>>& send_rows,
                  const std::vector<std::vector<std::int64_t>>& recv_off,
                  const std::vector<std::vector<std::int64_t>>& recv_rows, std::size_t row_bytes, const char* what);

// A barrier on the ranks' streams: a one-float all-reduce. Its span on a rank is the time that rank waits for the
// slowest one, plus the all-reduce's own latency (about 10 us over NVLink).
void barrier(Communicator& c, const std::vector<float*>& scratch, const char* what);

// In-place all-gather of `bytes` per rank: rank r's part is at buf[r] + r·bytes, every rank ends with all parts.
void allgather(Communicator& c, const std::vector<void*>& buf, std::size_t bytes, const char* what);

}  // namespace moe::nccl
