// The gpu:: entry points of a build without the CUDA toolkit: they report that no GPU backend was built.
// Only compiled when MOELAB_CUDA is OFF or nvcc is missing; the real ones live in the .cu files beside it.
#include "kernels/api.hpp"
#include "kernels/attention.hpp"
#include "kernels/common/error.hpp"

// The CUDA build's glob also picks up this file; the guard keeps its stand-ins out of that build.
#if !defined(MOELAB_HAVE_CUDA)

namespace moe::gpu {

bool built() { return false; }
std::vector<DeviceInfo> devices() { return {}; }
std::string unavailable_reason() { return "this moelab was built without CUDA (MOELAB_CUDA=OFF or no nvcc found)"; }
std::size_t free_memory_bytes(int) { return 0; }
void run_layer(const LayerSpec&, const LayerRunOptions&, LayerRun&) {
    throw Error(ErrorKind::NoDevice, "the cuda backend is not available: " + unavailable_reason());
}

}  // namespace moe::gpu

namespace moe::route::gpu {
void popularity_logits(std::uint64_t, const float*, std::int64_t, int, float*, Stream) {
    throw Error(ErrorKind::NoDevice, "built without CUDA");
}
void softmax_topk(const float*, std::int64_t, int, int, bool, std::int32_t*, float*, Stream) {
    throw Error(ErrorKind::NoDevice, "built without CUDA");
}
}  // namespace moe::route::gpu

namespace moe::attention::gpu {
void make_weights(std::uint64_t, int, const Spec&, bf16_t*, bf16_t*, Stream) {
    throw Error(ErrorKind::NoDevice, "built without CUDA");
}
void make_kv(std::uint64_t, const Spec&, bf16_t*, bf16_t*, Stream) {
    throw Error(ErrorKind::NoDevice, "built without CUDA");
}
Plan plan(const Spec&, int) { throw Error(ErrorKind::NoDevice, "built without CUDA"); }
std::size_t workspace_bytes(const Spec&, int) { throw Error(ErrorKind::NoDevice, "built without CUDA"); }
std::size_t attend_workspace_bytes(const Spec&, int) { throw Error(ErrorKind::NoDevice, "built without CUDA"); }
void decode(const Spec&, const bf16_t*, const bf16_t*, const bf16_t*, const bf16_t*, const bf16_t*, bf16_t*, void*,
            std::size_t, int, Stream) {
    throw Error(ErrorKind::NoDevice, "built without CUDA");
}
void attend(const Spec&, const bf16_t*, const bf16_t*, const bf16_t*, bf16_t*, void*, std::size_t, int, Stream) {
    throw Error(ErrorKind::NoDevice, "built without CUDA");
}
}  // namespace moe::attention::gpu

#endif  // !MOELAB_HAVE_CUDA
