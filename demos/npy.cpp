// .npy writer: a 10-byte preamble, a padded Python-dict header, then the raw little-endian data.
// Files are written through demos::write_file_atomic, so a failed dump never leaves a half file.
#include "demos/npy.hpp"

#include <cstdio>
#include <fstream>

#include "demos/atomic_file.hpp"
#include "kernels/common/error.hpp"

namespace demos {
namespace {

void write_raw(const std::string& path, const char* descr, const void* data, std::size_t bytes,
               const std::vector<std::int64_t>& shape) {
    std::string sh = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) sh += std::to_string(shape[i]) + (shape.size() == 1 ? "," : i + 1 < shape.size() ? ", " : "");
    sh += ")";
    std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + sh + ", }";
    std::size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header += '\n';
    std::string file;
    file.reserve(10 + header.size() + bytes);
    const unsigned char magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    file.append(reinterpret_cast<const char*>(magic), 8);
    std::uint16_t hl = static_cast<std::uint16_t>(header.size());
    file += static_cast<char>(hl & 0xff);
    file += static_cast<char>(hl >> 8);
    file += header;
    file.append(static_cast<const char*>(data), bytes);
    std::string err;
    if (!write_file_atomic(path, file, &err)) MOE_BAD_INPUT("--dump: " << err);
}

}  // namespace

void write_npy(const std::string& path, const std::vector<float>& v, const std::vector<std::int64_t>& shape) {
    write_raw(path, "<f4", v.data(), v.size() * 4, shape);
}
void write_npy(const std::string& path, const std::vector<std::int32_t>& v, const std::vector<std::int64_t>& shape) {
    write_raw(path, "<i4", v.data(), v.size() * 4, shape);
}
void write_npy_bf16(const std::string& path, const std::vector<moe::bf16_t>& v,
                    const std::vector<std::int64_t>& shape) {
    std::vector<float> f(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) f[i] = moe::bf16_to_f32(v[i]);
    write_npy(path, f, shape);
}

}  // namespace demos
