// The one error type of moelab and the checks that throw it.
// Library code never exits: it throws moe::Error with file:line, and the CLI and GUI catch it at the top.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace moe {

// What kind of failure: front ends map BadInput to exit code 2 and everything else to 1.
enum class ErrorKind { BadInput, Runtime, OutOfMemory, NoDevice };

class Error : public std::runtime_error {
  public:
    Error(ErrorKind kind, const std::string& msg) : std::runtime_error(msg), kind_(kind) {}
    ErrorKind kind() const { return kind_; }

  private:
    ErrorKind kind_;
};

}  // namespace moe

#define MOE_STRINGIFY2(x) #x
#define MOE_STRINGIFY(x) MOE_STRINGIFY2(x)

// MOE_ASSERT(cond, streamable message...) throws a Runtime error naming the file and line.
#define MOE_ASSERT(cond, ...)                                                                   \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            std::ostringstream moe_os_;                                                         \
            moe_os_ << __FILE__ ":" MOE_STRINGIFY(__LINE__) ": assertion `" #cond "` failed: " \
                    << __VA_ARGS__;                                                             \
            throw ::moe::Error(::moe::ErrorKind::Runtime, moe_os_.str());                       \
        }                                                                                       \
    } while (0)

// MOE_BAD_INPUT(streamable message...) throws a BadInput error (CLI exit code 2).
#define MOE_BAD_INPUT(...)                                                \
    do {                                                                  \
        std::ostringstream moe_os_;                                       \
        moe_os_ << __VA_ARGS__;                                           \
        throw ::moe::Error(::moe::ErrorKind::BadInput, moe_os_.str());    \
    } while (0)
