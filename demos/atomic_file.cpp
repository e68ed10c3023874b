// Writing a file through a temporary beside it and a rename: readers see the old file or the new one,
// never half of one, even when the writer crashes.
#include "demos/atomic_file.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "kernels/common/error.hpp"

namespace demos {

bool write_file_atomic(const std::string& path, const std::string& content, std::string* err) {
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f) {
            if (err) *err = "cannot write " + tmp + ": " + std::strerror(errno);
            return false;
        }
        f << content;
        f.flush();
        if (!f) {
            if (err) *err = "cannot write " + tmp;
            std::remove(tmp.c_str());
            return false;
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        if (err) *err = "cannot rename " + tmp + " to " + path + ": " + std::strerror(errno);
        std::remove(tmp.c_str());
        return false;
    }
    return true;
}

void write_file_atomic(const std::string& path, const std::string& content) {
    std::string err;
    if (!write_file_atomic(path, content, &err)) throw moe::Error(moe::ErrorKind::Runtime, err);
}

}  // namespace demos
