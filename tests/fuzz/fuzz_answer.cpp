// A student's typed answer, for every question kind of the built-in lessons (choice, numeric, slider, bars,
// timeline) and a confidence: refused with a message or accepted, never a crash, and never unbounded memory.
#include "demos/lesson.hpp"
#include "demos/lesson_play.hpp"
#include "tests/fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    static const demos::LessonSet set = demos::load_lessons("");
    std::string text = fuzz_text(data, size);
    for (const demos::Lesson& l : set.lessons) {
        demos::LessonAnswer a;
        try {
            std::string why = demos::parse_answer(l.question, l.scenario, text, &a);
            if (why.empty() && l.question.kind == demos::QuestionKind::Bars)
                FUZZ_CHECK(a.bars.size() <= 4096, "a bars answer has at most one bar per expert");
        } catch (const moe::Error& e) {
            FUZZ_CHECK(e.kind() == moe::ErrorKind::BadInput, "an answer error is BadInput");
        }
    }
    int conf = 0;
    (void)demos::parse_confidence(text, &conf);
    return 0;
}
