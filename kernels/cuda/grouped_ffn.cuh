// The gated expert FFN of one plan (expert counts and offsets known on the host) as two
// cublasGemmGroupedBatchedEx calls over the non-empty experts, with the SiLU gate between them. prepare() uploads
// the operand pointers once; launch() then needs no copy and no host sync, so a timed schedule can replay it.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "kernels/common/bf16.hpp"
#include "kernels/cuda/launchers.hpp"

namespace moe::gpu {

struct GroupedFfnOperands {
    const bf16_t* w1 = nullptr;  // [E, 2F, d]
    const bf16_t* w2 = nullptr;  // [E, d, F]
    const bf16_t* x = nullptr;   // packed rows [rows, d]
    bf16_t* h1 = nullptr;        // [rows, 2F]
    bf16_t* h = nullptr;         // [rows, F]
    bf16_t* y = nullptr;         // [rows, d]
};

class GroupedFfn {
  public:
    bool prepared() const { return prepared_; }
    // counts/offsets: the plan, per expert (offsets has E + 1 entries). Uploads 6 pointers per non-empty expert.
    void prepare(const std::vector<std::int32_t>& counts, const std::vector<std::int32_t>& offsets, int d, int F,
                 const GroupedFfnOperands& ops);
    // Enqueues both GEMMs and the gate on st (cuBLAS through blas_on(st)). False, with nothing enqueued, when this
    // cuBLAS has no grouped bf16 GEMM.
    bool launch(cudaStream_t st);

  private:
    bool prepared_ = false;
    int groups_ = 0, ffn_ = 0;
    std::int64_t rows_ = 0;
    bf16_t *h1_ = nullptr, *h_ = nullptr;
    std::vector<int> m1_, m2_, n_, k1_, k2_, ld1_, ld2_, sizes_;
    std::vector<cublasOperation_t> op_t_, op_n_;
    std::vector<float> alpha_, beta_;
    DeviceBuffer<const void*> ptrs_;  // 6·groups: A1, B1, C1, A2, B2, C2
};

}  // namespace moe::gpu
