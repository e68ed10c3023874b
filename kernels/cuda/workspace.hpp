// Carves one device workspace into aligned sub-buffers. Called with a null base it only adds up the bytes,
// so each stage's *_workspace_bytes() and its launcher share one layout (the size is asked, never guessed).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/common/error.hpp"

namespace moe::gpu {

class Carver {
  public:
    Carver(void* base, std::size_t bytes) : base_(static_cast<char*>(base)), cap_(bytes) {}

    template <class T>
    T* take(std::size_t count) {
        std::size_t off = (used_ + 255) & ~std::size_t(255);  // 256 B: every vector access stays aligned
        used_ = off + count * sizeof(T);
        if (!base_) return nullptr;
        MOE_ASSERT(used_ <= cap_, "workspace of " << cap_ << " bytes is too small: " << used_ << " needed");
        return reinterpret_cast<T*>(base_ + off);
    }
    std::size_t used() const { return used_; }

  private:
    char* base_;
    std::size_t cap_;
    std::size_t used_ = 0;
};

}  // namespace moe::gpu
