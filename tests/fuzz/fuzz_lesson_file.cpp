// Lesson files: the same path as `moelab lessons check` and the app's Lessons view (size and nesting limits,
// the TOML parser, the lesson reader, the static checks of every expression and call).
#include "demos/lesson.hpp"
#include "demos/lesson_check.hpp"
#include "tests/fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    std::string text = fuzz_text(data, size);
    demos::Lesson l;
    std::vector<demos::LessonProblem> problems;
    try {
        bool ok = demos::parse_lesson_checked(text, "fuzz.toml", &l, &problems);
        FUZZ_CHECK(ok == problems.empty(), "a lesson is accepted exactly when it has no problems");
        for (auto& p : problems) FUZZ_CHECK(!p.message.empty(), "every problem says what is wrong");
    } catch (const moe::Error& e) {
        std::fprintf(stderr, "parse_lesson threw instead of reporting: %s\n", e.what());
        std::abort();
    }
    return 0;
}
