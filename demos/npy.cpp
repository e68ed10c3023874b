// .npy writer: a 10-byte preamble, a padded Python-dict header, then the raw little-endian data.
// Files are written to a temporary name and renamed, so a failed dump never leaves a half file.
#include "demos/npy.hpp"

#include <cstdio>
#include <fstream>

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
    std::string tmp = path + ".tmp";
    std::ofstream f(tmp, std::ios::binary);
    if (!f) throw moe::Error(moe::ErrorKind::Runtime, "--dump: cannot write " + tmp);
    const unsigned char magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    f.write(reinterpret_cast<const char*>(magic), 8);
    std::uint16_t hl = static_cast<std::uint16_t>(header.size());
    f.put(static_cast<char>(hl & 0xff));
    f.put(static_cast<char>(hl >> 8));
    f << header;
    f.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
    f.close();
    if (!f) throw moe::Error(moe::ErrorKind::Runtime, "--dump: failed writing " + tmp);
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
        throw moe::Error(moe::ErrorKind::Runtime, "--dump: cannot rename " + tmp);
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
