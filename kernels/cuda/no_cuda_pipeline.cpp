// The measured pipeline's entry points in a build without the CUDA toolkit: they say why nothing can be measured.
#include "kernels/common/error.hpp"
#include "kernels/pipeline.hpp"

#if !defined(MOELAB_HAVE_CUDA)

namespace moe::pipeline::gpu {

bool green_contexts_available(std::string* why) {
    if (why) *why = "this moelab was built without CUDA (MOELAB_CUDA=OFF or no nvcc found)";
    return false;
}
void run(const Spec&, Run&) {
    throw Error(ErrorKind::NoDevice,
                "the measured pipeline needs the cuda backend, and this moelab was built "
                "without CUDA (MOELAB_CUDA=OFF or no nvcc found)");
}
void probe(const Spec&, const std::vector<double>&, Probe&) {
    throw Error(ErrorKind::NoDevice, "the pipeline probe needs the cuda backend; this moelab was built without CUDA");
}

}  // namespace moe::pipeline::gpu

#endif  // !MOELAB_HAVE_CUDA
