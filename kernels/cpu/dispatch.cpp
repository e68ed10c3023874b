// CPU reference for dispatch: the stable expert-major plan (counts, padded offsets, row → token, inverse map)
// and the pack that gathers token rows into it. Every GPU strategy is checked against this order.
#include <cstring>

#include "kernels/api.hpp"
#include "kernels/common/error.hpp"
#include "kernels/cpu/parallel.hpp"

namespace moe::dispatch {

Strategy parse_strategy(const std::string& text) {
    if (text == "sort") return Strategy::Sort;
    if (text == "atomic") return Strategy::Atomic;
    if (text == "scan") return Strategy::Scan;
    if (text == "nopack") return Strategy::NoPack;
    MOE_BAD_INPUT("--strategy '" << text << "': unknown dispatch strategy; allowed: sort, atomic, scan, nopack");
}

const char* strategy_name(Strategy s) {
    switch (s) {
        case Strategy::Sort:
            return "sort";
        case Strategy::Atomic:
            return "atomic";
        case Strategy::Scan:
            return "scan";
        case Strategy::NoPack:
            return "nopack";
    }
    return "sort";
}

std::int64_t max_rows(std::int64_t tokens, int k, int experts, int align) {
    return tokens * k + std::int64_t(experts) * (align - 1);
}

std::int64_t plan(const std::int32_t* ids, std::int64_t tokens, int k, int experts, int align, std::int32_t* counts,
                  std::int32_t* offsets, std::int32_t* row_token, std::int32_t* inv) {
    MOE_ASSERT(align >= 1, "align must be >= 1");
    std::int64_t n = tokens * k;
    for (int e = 0; e < experts; ++e) counts[e] = 0;
    for (std::int64_t a = 0; a < n; ++a)
        if (ids[a] >= 0) ++counts[ids[a]];
    offsets[0] = 0;
    for (int e = 0; e < experts; ++e) {
        std::int64_t padded = (std::int64_t(counts[e]) + align - 1) / align * align;
        offsets[e + 1] = static_cast<std::int32_t>(offsets[e] + padded);
    }
    std::int64_t rows = offsets[experts];
    for (std::int64_t r = 0; r < rows; ++r) row_token[r] = -1;
    std::vector<std::int64_t> cursor(offsets, offsets + experts);
    // Walking assignments in (t, j) order makes the order inside each expert token-ascending.
    for (std::int64_t a = 0; a < n; ++a) {
        int e = ids[a];
        if (e < 0) {
            inv[a] = -1;
            continue;
        }
        std::int64_t r = cursor[e]++;
        row_token[r] = static_cast<std::int32_t>(a / k);
        inv[a] = static_cast<std::int32_t>(r);
    }
    return rows;
}

void pack(const bf16_t* x, const std::int32_t* row_token, std::int64_t rows, int hidden, bf16_t* xp) {
    moe::cpu::parallel_for(rows, 0, 1024, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t r = b; r < e; ++r) {
            bf16_t* dst = xp + r * hidden;
            if (row_token[r] < 0)
                std::memset(dst, 0, sizeof(bf16_t) * hidden);
            else
                std::memcpy(dst, x + std::int64_t(row_token[r]) * hidden, sizeof(bf16_t) * hidden);
        }
    });
}

}  // namespace moe::dispatch
