// bfloat16 storage and round-to-nearest-even conversion that gives the same bits on host and device.
// Tensors of bf16 are std::uint16_t buffers; these helpers are the only place the format is encoded.
#pragma once
#include <cstdint>
#include <cstring>

#include "kernels/common/hd.hpp"

namespace moe {

using bf16_t = std::uint16_t;

MOE_HD std::uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
#endif
}

MOE_HD float bits_float(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float f;
    std::memcpy(&f, &u, 4);
    return f;
#endif
}

// Round to nearest, ties to even; NaN stays a quiet NaN.
MOE_HD bf16_t f32_to_bf16(float f) {
    std::uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<bf16_t>((u >> 16) | 0x40u);
    std::uint32_t lsb = (u >> 16) & 1u;
    u += 0x7fffu + lsb;
    return static_cast<bf16_t>(u >> 16);
}

MOE_HD float bf16_to_f32(bf16_t h) { return bits_float(static_cast<std::uint32_t>(h) << 16); }

MOE_HD float round_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

// Relative precision used in tolerances: abs + |ref|·eps.
constexpr float kBf16Eps = 1.0f / 128.0f;

}  // namespace moe
