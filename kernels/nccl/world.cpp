// One process per GPU, the way clusters run: when mpirun started this process (and the build has MPI), MPI is
// initialised on first use, this process becomes rank MPI_COMM_WORLD's rank on the GPU of its index among the
// host's processes, and rank 0's NCCL unique id reaches every process through MPI_Bcast. Nothing else goes over
// MPI: the layer's own exchanges and its result gathering are NCCL's, so one host and several take the same path.
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <string>

#include "kernels/common/error.hpp"
#include "kernels/nccl/comm.hpp"
#include "kernels/nccl/nccl_api.hpp"
#if MOELAB_HAVE_MPI
#include <mpi.h>
#endif

namespace moe::nccl {

namespace {

// The process count an MPI launcher announced, 0 when none did (OpenMPI's mpirun, PMIx, PMI-2 launchers).
int launcher_size() {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"})
        if (const char* s = std::getenv(v); s && *s) return std::atoi(s);
    return 0;
}

#if MOELAB_HAVE_MPI
// At exit: a normal finalize, unless a communicator was aborted (a peer timed out or failed); then the others may
// be stuck or gone, and MPI_Finalize's closing fence would wait for them, so the job is aborted instead.
void finish_mpi() {
    int done = 0;
    MPI_Finalized(&done);
    if (done) return;
    if (process_aborted()) {
        std::fprintf(stderr, "moelab: rank %d: aborting the MPI job after an NCCL failure\n", world_rank());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Finalize();
}
#endif

}  // namespace

#if MOELAB_HAVE_MPI
bool mpi_built() { return true; }
#else
bool mpi_built() { return false; }
#endif

const ProcessWorld* process_world() {
    static std::once_flag once;
    static ProcessWorld w;
    static bool on = false;
    static std::string error;
    std::call_once(once, [] {
        const int n = launcher_size();
        if (n < 2) return;  // no launcher, or one process: it drives every rank itself
#if MOELAB_HAVE_MPI
        int inited = 0;
        MPI_Initialized(&inited);
        if (!inited) {
            int provided = 0;
            if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
                error = "MPI_Init_thread failed under the MPI launcher";
                return;
            }
            std::atexit(finish_mpi);
        }
        MPI_Comm_rank(MPI_COMM_WORLD, &w.rank);
        MPI_Comm_size(MPI_COMM_WORLD, &w.size);
        // The GPU: this process's index among the processes sharing its host.
        MPI_Comm host;
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, w.rank, MPI_INFO_NULL, &host);
        MPI_Comm_rank(host, &w.device);
        MPI_Comm_free(&host);
        w.share_id = [](ncclUniqueId& id, bool ok) {
            if (MPI_Bcast(&id, int(sizeof id), MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
                throw Error(ErrorKind::Runtime, "MPI_Bcast of the NCCL unique id failed");
            int mine = ok ? 1 : 0, all = 0;
            if (MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS)
                throw Error(ErrorKind::Runtime, "MPI_Allreduce of the processes' readiness failed");
            return all == 1;
        };
        on = w.size > 1;
        // One report per job: the other ranks' stdout goes quiet (their errors still reach stderr).
        if (on && w.rank != 0 && !std::getenv("MOELAB_MPI_ALL_OUTPUT")) {
            std::fflush(stdout);
            if (!std::freopen("/dev/null", "w", stdout)) std::clearerr(stdout);
        }
#else
        std::ostringstream os;
        os << "started by an MPI launcher with " << n
           << " processes, but this build has no MPI (configure with libopenmpi-dev installed, MOELAB_MPI=AUTO or ON); "
              "run one process instead, which drives every GPU itself";
        error = os.str();
#endif
    });
    if (!error.empty()) throw Error(ErrorKind::Runtime, error);
    return on ? &w : nullptr;
}

int world_rank() {
    const ProcessWorld* w = process_world();
    return w ? w->rank : 0;
}

int world_size() {
    const ProcessWorld* w = process_world();
    return w ? w->size : 1;
}

}  // namespace moe::nccl
