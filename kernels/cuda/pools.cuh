// SM pools on one GPU through CUDA green contexts, with the driver API fetched through the runtime
// (cudaGetDriverEntryPointByVersion), so that nothing links libcuda and the binary starts without a driver.
#pragma once
#include <cuda_runtime.h>

#include <string>

namespace moe::gpu {

// Two streams on one device whose kernels run on disjoint SM sets (green contexts), or, where the driver
// cannot partition, two plain streams that share every SM (kind "shared-streams", with the reason in `why`).
class SmPools {
  public:
    // attention_sms = 0: half the device. The counts are rounded to the driver's granularity (8 SMs on Hopper).
    SmPools(int device, int attention_sms);
    ~SmPools();
    SmPools(const SmPools&) = delete;
    SmPools& operator=(const SmPools&) = delete;

    bool green() const { return green_; }
    const std::string& why() const { return why_; }
    int device_sms() const { return device_sms_; }
    int attention_sms() const { return attention_sms_; }
    int expert_sms() const { return expert_sms_; }
    cudaStream_t attention_stream() const { return streams_[0]; }
    cudaStream_t expert_stream() const { return streams_[1]; }

  private:
    bool green_ = false;
    std::string why_;
    int device_sms_ = 0, attention_sms_ = 0, expert_sms_ = 0;
    void* ctx_[2] = {nullptr, nullptr};  // CUgreenCtx
    cudaStream_t streams_[2] = {nullptr, nullptr};
};

// Whether this driver offers green contexts; `why` says what is missing when not.
bool green_contexts_supported(std::string* why);

}  // namespace moe::gpu
