// Shared by the libFuzzer harnesses: bad input must end in moe::Error (BadInput) and nothing else; anything
// that escapes, crashes, hangs or trips ASan/UBSan is a finding. A broken invariant aborts with a message.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <string>

#include "kernels/common/error.hpp"

#define FUZZ_CHECK(cond, what)                                                     \
    do {                                                                           \
        if (!(cond)) {                                                             \
            std::fprintf(stderr, "fuzz invariant broken: %s (%s)\n", what, #cond); \
            std::abort();                                                          \
        }                                                                          \
    } while (0)

inline std::string fuzz_text(const unsigned char* data, std::size_t size) {
    return std::string(reinterpret_cast<const char*>(data), size);
}
