// Counter-based RNG: every value is a pure function of (seed, stream, index), bit-equal on host and device.
// Inputs (activations, weights, Gumbel noise) come from here, so the CPU reference and the GPU see the same tensors.
#pragma once
#include <cstdint>

#include "bf16.hpp"

namespace moe {

// Streams keep the tensors of one scenario independent of each other.
enum RngStream : std::uint64_t {
    kStreamX = 1,       // activations x [T, d]
    kStreamGate = 2,    // gate weights Wg [E, d]
    kStreamW1 = 3,      // expert w1 [E, 2F, d]
    kStreamW2 = 4,      // expert w2 [E, d, F]
    kStreamGumbel = 5,  // Gumbel noise [T, E] for popularity routing
};

// splitmix64's finaliser over a mix of seed, stream and index.
MOE_HD std::uint64_t rng_hash(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
    std::uint64_t z = seed * 0x9E3779B97F4A7C15ull + stream * 0xD1B54A32D192ED03ull + index * 0xBF58476D1CE4E5B9ull +
                      0x94D049BB133111EBull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Uniform in [0, 1) with 24 bits: exact in float on every platform.
MOE_HD float rng_uniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
    return static_cast<float>(rng_hash(seed, stream, index) >> 40) * (1.0f / 16777216.0f);
}

// Uniform in (0, 1): never 0, so log() is finite.
MOE_HD float rng_uniform_open(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
    return (static_cast<float>(rng_hash(seed, stream, index) >> 40) + 0.5f) * (1.0f / 16777216.0f);
}

// Arithmetic that is never contracted into FMA, so host and device round identically.
MOE_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fmul_rn(a, b);
#else
    volatile float r = a * b;
    return r;
#endif
}
MOE_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fadd_rn(a, b);
#else
    volatile float r = a + b;
    return r;
#endif
}
MOE_HD float div_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fdiv_rn(a, b);
#else
    volatile float r = a / b;
    return r;
#endif
}

// Natural log for x > 0 built only from correctly rounded +, *, / so it is bit-equal on host and device
// (logf itself differs by an ulp between libm and CUDA). Accurate to a few ulp, which is all the noise needs.
MOE_HD float det_log(float x) {
    std::uint32_t u = float_bits(x);
    int e = static_cast<int>((u >> 23) & 0xff) - 127;
    float m = bits_float((u & 0x007fffffu) | 0x3f800000u);  // [1, 2)
    if (m > 1.41421356f) {
        m = mul_rn(m, 0.5f);
        e += 1;
    }
    float s = div_rn(add_rn(m, -1.0f), add_rn(m, 1.0f));  // |s| <= 0.1716
    float s2 = mul_rn(s, s);
    // 2·atanh(s) = 2(s + s^3/3 + s^5/5 + ...), Horner form.
    float p = 1.0f / 13.0f;
    p = add_rn(mul_rn(p, s2), 1.0f / 11.0f);
    p = add_rn(mul_rn(p, s2), 1.0f / 9.0f);
    p = add_rn(mul_rn(p, s2), 1.0f / 7.0f);
    p = add_rn(mul_rn(p, s2), 1.0f / 5.0f);
    p = add_rn(mul_rn(p, s2), 1.0f / 3.0f);
    p = add_rn(mul_rn(p, s2), 1.0f);
    float lm = mul_rn(mul_rn(2.0f, s), p);
    return add_rn(mul_rn(static_cast<float>(e), 0.693147180559945f), lm);
}

// Standard Gumbel noise g = -log(-log(u)); adding it to log p and taking the top k samples k distinct
// experts without replacement in proportion to p (the Gumbel-top-k trick).
MOE_HD float rng_gumbel(std::uint64_t seed, std::uint64_t index) {
    float u = rng_uniform_open(seed, kStreamGumbel, index);
    return -det_log(-det_log(u));
}

// A bf16 value uniform in [-scale, scale).
MOE_HD bf16_t rng_bf16(std::uint64_t seed, std::uint64_t stream, std::uint64_t index, float scale) {
    float u = rng_uniform(seed, stream, index);
    return f32_to_bf16(mul_rn(add_rn(mul_rn(u, 2.0f), -1.0f), scale));
}

}  // namespace moe
