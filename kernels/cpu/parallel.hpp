// A minimal parallel-for over index ranges with std::thread, for the CPU reference.
// Each worker gets one contiguous chunk, so results never depend on the thread count.
#pragma once
#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace moe::cpu {

inline int resolve_threads(int threads) {
    if (threads > 0) return threads;
    unsigned hc = std::thread::hardware_concurrency();
    return hc == 0 ? 1 : static_cast<int>(hc);
}

// Calls f(begin, end) on disjoint chunks covering [0, n), at least `grain` items per chunk.
template <class F>
void parallel_for(std::int64_t n, int threads, std::int64_t grain, F&& f) {
    int nt = resolve_threads(threads);
    std::int64_t chunks = std::min<std::int64_t>(nt, (n + grain - 1) / std::max<std::int64_t>(grain, 1));
    if (chunks <= 1) {
        if (n > 0) f(std::int64_t{0}, n);
        return;
    }
    std::vector<std::thread> pool;
    std::int64_t step = (n + chunks - 1) / chunks;
    for (std::int64_t c = 1; c < chunks; ++c) {
        std::int64_t b = c * step, e = std::min(n, b + step);
        if (b < e) pool.emplace_back([&f, b, e] { f(b, e); });
    }
    f(std::int64_t{0}, std::min(n, step));
    for (auto& t : pool) t.join();
}

}  // namespace moe::cpu
