// The SM clock and the board's power while the benchmark times something, from NVML. A math-bound kernel that runs
// back to back for a second holds the board at its power limit, and the driver lowers the SM clock to stay under it:
// the GEMM ceiling, measured first for a few milliseconds, runs at the top clock, the timed rows may not. Each row
// says what the clock was, so a row short of its roofline shows whether the clock or the code is why. It is NVML's
// reading, which can stay at the top clock while the SMs run slower: Nsight Compute measured a 250 µs math-bound
// kernel with every SM busy at an effective 1.58 GHz while the row's samples read 1,980 MHz, and cuBLAS's GEMM that
// sets the ceiling at 1.61 GHz (kernels/bench/RESULTS.md, sixteenth session).
//
// NVML (libnvidia-ml.so.1, part of the driver) is opened at run time: no build dependency. Where it is missing or
// fails, nothing is sampled and the rows say nothing about clocks; MOELAB_BENCH_CLOCKS=0 turns the sampling off.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace moe::bench {

// NVML's clock event reasons (nvmlClocksEventReason*) that explain a lowered clock.
constexpr std::uint64_t kClockPowerCap = 0x4, kClockHwSlowdown = 0x8, kClockSwThermal = 0x20, kClockHwThermal = 0x40,
                        kClockPowerBrake = 0x80;

struct ClockStats {
    int samples = 0;                                // 0: NVML unavailable, or the window was too short to sample
    double mean_mhz = 0, min_mhz = 0, max_mhz = 0;  // the SM clock over the samples
    double top_mhz = 0;         // the SM clock's maximum (what the GPU runs at when nothing limits it)
    double power_w = 0;         // mean board power over the window (energy counter); 0: unknown
    double limit_w = 0;         // the enforced power limit; 0: unknown
    std::uint64_t reasons = 0;  // OR of the event reasons seen in the samples
};

// "SM 1,410 MHz (1,395-1,440) of 1,980, 693 W of 700, power cap"; "" without samples.
std::string describe(const ClockStats& s);

// Samples the current CUDA device every millisecond on a thread between start() and stop().
class ClockSampler {
  public:
    ClockSampler();
    ~ClockSampler();
    ClockSampler(const ClockSampler&) = delete;
    ClockSampler& operator=(const ClockSampler&) = delete;
    bool available() const { return dev_ != nullptr; }
    void start();
    ClockStats stop();

  private:
    void* dev_ = nullptr;  // nvmlDevice_t
    std::thread thread_;
    std::atomic<bool> running_{false};
    std::mutex mu_;
    std::vector<unsigned> mhz_;
    std::uint64_t reasons_ = 0, energy0_mj_ = 0;
    double t0_ = 0;
};

// Samples from construction until stop() or the end of the scope, whichever comes first: a failed launch in between
// does not leave the sampler running.
class ClockWindow {
  public:
    explicit ClockWindow(ClockSampler& c) : c_(c) { c_.start(); }
    ~ClockWindow() { (void)c_.stop(); }
    ClockWindow(const ClockWindow&) = delete;
    ClockWindow& operator=(const ClockWindow&) = delete;
    ClockStats stop() { return c_.stop(); }

  private:
    ClockSampler& c_;
};

}  // namespace moe::bench
