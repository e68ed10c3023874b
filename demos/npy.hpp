// Writes NumPy .npy files (format 1.0, little-endian) so outside tools can check moelab's tensors.
// bf16 tensors are written as float32, which holds every bf16 value exactly.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/common/bf16.hpp"

namespace demos {

void write_npy(const std::string& path, const std::vector<float>& v, const std::vector<std::int64_t>& shape);
void write_npy(const std::string& path, const std::vector<std::int32_t>& v, const std::vector<std::int64_t>& shape);
void write_npy_bf16(const std::string& path, const std::vector<moe::bf16_t>& v,
                    const std::vector<std::int64_t>& shape);

}  // namespace demos
