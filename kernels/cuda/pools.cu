// Green contexts: cuDeviceGetDevResource → cuDevSmResourceSplitByCount → cuDevResourceGenerateDesc →
// cuGreenCtxCreate → cuGreenCtxStreamCreate. The driver functions come from cudaGetDriverEntryPointByVersion:
// <cuda.h> is included for its types only, and nothing here links libcuda.
#include <cuda.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <mutex>
#include <sstream>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/pools.cuh"

namespace moe::gpu {

namespace {

using PFN_GetDevResource = CUresult (*)(CUdevice, CUdevResource*, CUdevResourceType);
using PFN_SplitByCount = CUresult (*)(CUdevResource*, unsigned int*, const CUdevResource*, CUdevResource*, unsigned int,
                                      unsigned int);
using PFN_GenerateDesc = CUresult (*)(CUdevResourceDesc*, CUdevResource*, unsigned int);
using PFN_GreenCtxCreate = CUresult (*)(CUgreenCtx*, CUdevResourceDesc, CUdevice, unsigned int);
using PFN_GreenCtxDestroy = CUresult (*)(CUgreenCtx);
using PFN_GreenCtxStreamCreate = CUresult (*)(CUstream*, CUgreenCtx, unsigned int, int);
using PFN_GetErrorString = CUresult (*)(CUresult, const char**);

struct Driver {
    PFN_GetDevResource get_resource = nullptr;
    PFN_SplitByCount split = nullptr;
    PFN_GenerateDesc desc = nullptr;
    PFN_GreenCtxCreate create = nullptr;
    PFN_GreenCtxDestroy destroy = nullptr;
    PFN_GreenCtxStreamCreate stream = nullptr;
    PFN_GetErrorString error_string = nullptr;
    std::string why;  // empty when every function was found
};

template <class F>
bool fetch(const char* name, F& out, std::string& why) {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q{};
    // The ABI of this toolkit's <cuda.h>, whose types the pointers are cast to (cuGreenCtxStreamCreate, for one,
    // is not in the 12.4 ABI).
    cudaError_t e = cudaGetDriverEntryPointByVersion(name, &p, CUDART_VERSION, cudaEnableDefault, &q);
    if (e != cudaSuccess || q != cudaDriverEntryPointSuccess || !p) {
        (void)cudaGetLastError();
        if (why.empty())
            why = std::string("the NVIDIA driver does not offer ") + name +
                  " (green contexts need a "
                  "driver for CUDA " +
                  std::to_string(CUDART_VERSION / 1000) + " or newer)";
        return false;
    }
    out = reinterpret_cast<F>(p);
    return true;
}

const Driver& driver() {
    static Driver d;
    static std::once_flag once;
    std::call_once(once, [] {
        std::string why;
        bool ok = fetch("cuDeviceGetDevResource", d.get_resource, why);
        ok = fetch("cuDevSmResourceSplitByCount", d.split, why) && ok;
        ok = fetch("cuDevResourceGenerateDesc", d.desc, why) && ok;
        ok = fetch("cuGreenCtxCreate", d.create, why) && ok;
        ok = fetch("cuGreenCtxDestroy", d.destroy, why) && ok;
        ok = fetch("cuGreenCtxStreamCreate", d.stream, why) && ok;
        fetch("cuGetErrorString", d.error_string, why);
        d.why = ok ? "" : why;
    });
    return d;
}

std::string cu_error(CUresult r) {
    const char* s = nullptr;
    if (driver().error_string) driver().error_string(r, &s);
    std::ostringstream os;
    os << "CUresult " << int(r) << (s ? std::string(" (") + s + ")" : std::string());
    return os.str();
}

}  // namespace

bool green_contexts_supported(std::string* why) {
    const Driver& d = driver();
    if (why) *why = d.why;
    return d.why.empty();
}

SmPools::SmPools(int device, int attention_sms) {
    MOE_CUDA_CHECK(cudaSetDevice(device));
    MOE_CUDA_CHECK(cudaFree(nullptr));  // the primary context first: green contexts retain it
    cudaDeviceProp prop{};
    MOE_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    device_sms_ = prop.multiProcessorCount;
    if (attention_sms < 0 || attention_sms >= device_sms_) {
        std::ostringstream os;
        os << "--attention-sms " << attention_sms << ": this GPU has " << device_sms_
           << " SMs; the attention pool may take 1 to " << device_sms_ - 1 << " (0 = half), the experts the rest";
        throw Error(ErrorKind::BadInput, os.str());
    }
    const Driver& d = driver();
    auto shared_streams = [&](const std::string& why) {
        why_ = why;
        green_ = false;
        attention_sms_ = expert_sms_ = device_sms_;
        for (auto& s : streams_)
            if (!s) MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    };
    if (!d.why.empty()) {
        shared_streams(d.why);
        return;
    }

    CUdevResource all{};
    CUresult r = d.get_resource(CUdevice(device), &all, CU_DEV_RESOURCE_TYPE_SM);
    if (r != CUDA_SUCCESS) {
        shared_streams("cuDeviceGetDevResource failed: " + cu_error(r));
        return;
    }
    const unsigned gran = std::max(1u, all.sm.smCoscheduledAlignment);
    const unsigned min_part = std::max(gran, all.sm.minSmPartitionSize);
    unsigned want = attention_sms > 0 ? unsigned(attention_sms) : unsigned(device_sms_ / 2);
    want = std::max(min_part, (want + gran / 2) / gran * gran);  // nearest multiple of the granularity
    if (want + min_part > all.sm.smCount) want = (all.sm.smCount - min_part) / gran * gran;
    CUdevResource part{}, rest{};
    unsigned groups = 1;
    r = d.split(&part, &groups, &all, &rest, 0, want);
    if (r != CUDA_SUCCESS || groups != 1) {
        shared_streams("cuDevSmResourceSplitByCount(" + std::to_string(want) + " SMs) failed: " + cu_error(r));
        return;
    }
    CUdevResource* res[2] = {&part, &rest};
    for (int i = 0; i < 2; ++i) {
        CUdevResourceDesc desc{};
        r = d.desc(&desc, res[i], 1);
        if (r == CUDA_SUCCESS)
            r = d.create(reinterpret_cast<CUgreenCtx*>(&ctx_[i]), desc, CUdevice(device), CU_GREEN_CTX_DEFAULT_STREAM);
        CUstream s = nullptr;
        if (r == CUDA_SUCCESS) r = d.stream(&s, static_cast<CUgreenCtx>(ctx_[i]), CU_STREAM_NON_BLOCKING, 0);
        if (r != CUDA_SUCCESS) {
            for (int j = 0; j <= i; ++j) {
                if (streams_[j]) cudaStreamDestroy(streams_[j]);
                streams_[j] = nullptr;
                if (ctx_[j]) d.destroy(static_cast<CUgreenCtx>(ctx_[j]));
                ctx_[j] = nullptr;
            }
            {
                shared_streams("creating the green context failed: " + cu_error(r));
                return;
            }
        }
        streams_[i] = reinterpret_cast<cudaStream_t>(s);
    }
    green_ = true;
    attention_sms_ = int(part.sm.smCount);
    expert_sms_ = int(rest.sm.smCount);
}

SmPools::~SmPools() {
    for (auto& s : streams_)
        if (s) cudaStreamDestroy(s);
    for (auto& c : ctx_)
        if (c && driver().destroy) driver().destroy(static_cast<CUgreenCtx>(c));
}

}  // namespace moe::gpu
