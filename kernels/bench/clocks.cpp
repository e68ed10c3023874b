// NVML through dlopen (clocks.hpp): the few calls the sampler needs, declared here with NVML's C ABI (status 0 is
// success; a device is an opaque pointer).
#include "kernels/bench/clocks.hpp"

#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace moe::bench {

namespace {

constexpr int kNvmlClockSm = 1;  // NVML_CLOCK_SM

struct Nvml {
    int (*device_by_pci)(const char*, void**) = nullptr;
    int (*clock)(void*, int, unsigned*) = nullptr;
    int (*max_clock)(void*, int, unsigned*) = nullptr;
    int (*reasons)(void*, unsigned long long*) = nullptr;
    int (*energy)(void*, unsigned long long*) = nullptr;
    int (*limit)(void*, unsigned*) = nullptr;
    bool ok = false;
};

template <class F>
bool find(void* lib, const char* name, F& f) {
    f = reinterpret_cast<F>(dlsym(lib, name));
    return f != nullptr;
}

const Nvml& nvml() {
    static const Nvml n = [] {
        Nvml v;
        void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!lib) return v;  // no driver here: nothing to sample
        int (*init)() = nullptr;
        if (!find(lib, "nvmlInit_v2", init) || !find(lib, "nvmlDeviceGetHandleByPciBusId_v2", v.device_by_pci) ||
            !find(lib, "nvmlDeviceGetClockInfo", v.clock) || !find(lib, "nvmlDeviceGetMaxClockInfo", v.max_clock))
            return v;
        // The event reasons' newer name first; energy and the limit are optional.
        if (!find(lib, "nvmlDeviceGetCurrentClocksEventReasons", v.reasons))
            find(lib, "nvmlDeviceGetCurrentClocksThrottleReasons", v.reasons);
        find(lib, "nvmlDeviceGetTotalEnergyConsumption", v.energy);
        find(lib, "nvmlDeviceGetEnforcedPowerLimit", v.limit);
        v.ok = init() == 0;
        return v;  // the library stays open for the process
    }();
    return n;
}

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::string thousands(double v) {
    const long long n = static_cast<long long>(v + 0.5);
    std::string s = std::to_string(n);
    for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(std::size_t(i), ",");
    return s;
}

}  // namespace

std::string describe(const ClockStats& s) {
    if (s.samples <= 0) return "";
    std::string out = "SM " + thousands(s.mean_mhz) + " MHz";
    if (s.max_mhz - s.min_mhz >= 15) out += " (" + thousands(s.min_mhz) + "-" + thousands(s.max_mhz) + ")";
    if (s.top_mhz > 0) out += " of " + thousands(s.top_mhz);
    if (s.power_w > 0) {
        out += ", " + thousands(s.power_w) + " W";
        if (s.limit_w > 0) out += " of " + thousands(s.limit_w);
    }
    if (s.reasons & kClockPowerCap) out += ", power cap";
    if (s.reasons & (kClockSwThermal | kClockHwThermal)) out += ", thermal";
    if (s.reasons & (kClockHwSlowdown | kClockPowerBrake)) out += ", hardware slowdown";
    return out;
}

ClockSampler::ClockSampler() {
    if (const char* off = std::getenv("MOELAB_BENCH_CLOCKS"); off && std::string(off) == "0") return;
    const Nvml& n = nvml();
    int dev = 0;
    char bus[32] = {};
    if (!n.ok || cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetPCIBusId(bus, sizeof bus, dev) != cudaSuccess)
        return;
    void* d = nullptr;
    if (n.device_by_pci(bus, &d) == 0) dev_ = d;
}

ClockSampler::~ClockSampler() {
    if (running_) (void)stop();
}

void ClockSampler::start() {
    if (!dev_ || running_) return;
    const Nvml& n = nvml();
    {
        std::lock_guard<std::mutex> lk(mu_);
        mhz_.clear();
        reasons_ = 0;
    }
    unsigned long long e = 0;
    energy0_mj_ = n.energy && n.energy(dev_, &e) == 0 ? e : 0;
    t0_ = now_s();
    running_ = true;
    thread_ = std::thread([this] {
        const Nvml& n = nvml();
        while (running_) {
            unsigned mhz = 0;
            unsigned long long why = 0;
            const bool got = n.clock(dev_, kNvmlClockSm, &mhz) == 0;
            const bool told = n.reasons && n.reasons(dev_, &why) == 0;
            {
                std::lock_guard<std::mutex> lk(mu_);
                if (got) mhz_.push_back(mhz);
                if (told) reasons_ |= why;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    });
}

ClockStats ClockSampler::stop() {
    ClockStats s;
    if (!running_) return s;
    running_ = false;
    if (thread_.joinable()) thread_.join();
    const Nvml& n = nvml();
    const double dt = now_s() - t0_;
    unsigned long long e = 0;
    // The energy counter moves in steps: a mean power over less than a quarter second says little.
    if (energy0_mj_ > 0 && dt >= 0.25 && n.energy(dev_, &e) == 0 && e > energy0_mj_)
        s.power_w = double(e - energy0_mj_) * 1e-3 / dt;
    unsigned v = 0;
    if (n.limit && n.limit(dev_, &v) == 0) s.limit_w = v * 1e-3;
    if (n.max_clock(dev_, kNvmlClockSm, &v) == 0) s.top_mhz = v;
    std::lock_guard<std::mutex> lk(mu_);
    s.samples = int(mhz_.size());
    if (s.samples == 0) return s;
    double sum = 0;
    for (unsigned m : mhz_) sum += m;
    s.mean_mhz = sum / s.samples;
    s.min_mhz = *std::min_element(mhz_.begin(), mhz_.end());
    s.max_mhz = *std::max_element(mhz_.begin(), mhz_.end());
    s.reasons = reasons_;
    return s;
}

}  // namespace moe::bench
