// The nccl backend of a build without NCCL: built() is false and every run throws NoDevice saying why.
// kernels/CMakeLists.txt compiles this file only when NCCL is off; the guard keeps the NCCL build's glob harmless.
#if !defined(MOELAB_HAVE_NCCL)
#include <string>

#include "kernels/common/error.hpp"
#include "kernels/nccl/nccl_api.hpp"

namespace moe::nccl {

namespace {
double g_timeout_s = 30.0;

[[noreturn]] void not_built() {
    throw Error(ErrorKind::NoDevice,
                "the nccl backend needs a build with CUDA and NCCL (MOELAB_NCCL=ON, libnccl and nccl.h found); this "
                "build has none");
}
}  // namespace

bool built() { return false; }
int usable_gpus() { return 0; }
std::string version() { return ""; }
double timeout_s() { return g_timeout_s; }
void set_timeout_s(double seconds) {
    if (!(seconds > 0 && seconds <= 3600)) MOE_BAD_INPUT("NCCL timeout " << seconds << " s must be in (0, 3600]");
    g_timeout_s = seconds;
}

bool mpi_built() { return false; }
int world_rank() { return 0; }
int world_size() { return 1; }

void run_ep_layer(const LayerSpec&, int, const LayerRunOptions&, EpRun&) { not_built(); }
void run_ep_layer(const LayerSpec&, int, const LayerRunOptions&, const EpOptions&, EpRun&) { not_built(); }

std::vector<A2aPoint> bench_alltoall(int, const std::vector<std::size_t>&, int, double, int) { not_built(); }

}  // namespace moe::nccl
#endif
