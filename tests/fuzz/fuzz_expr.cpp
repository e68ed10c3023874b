// Lesson expressions and {placeholder} templates: parse, the static call check, and evaluation with every name
// and function bound, all on arbitrary text.
#include "demos/lesson_expr.hpp"
#include "tests/fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    using namespace demos::lesson;
    std::string text = fuzz_text(data, size);
    auto lookup = [](const std::string& n) -> std::optional<double> {
        if (n == "unknown") return std::nullopt;
        return double(n.size());
    };
    auto call = [](const std::string& n, const std::vector<double>& a) -> std::optional<double> {
        if (n == "nofunc") return std::nullopt;
        return a.empty() ? 0.0 : a[0];
    };
    try {
        Expr e = Expr::parse(text);
        for (const CallSite& c : call_sites(e)) (void)check_builtin_call(c);
        (void)e.names();
        (void)e.functions();
        (void)e.eval(lookup, call);
    } catch (const moe::Error& e) {
        FUZZ_CHECK(e.kind() == moe::ErrorKind::BadInput, "an expression error is BadInput");
    }
    try {
        std::string out = fill_template(text, [&](const Expr& e) { return e.eval(lookup, call); });
        FUZZ_CHECK(out.size() <= text.size() * 8 + 64, "a filled template stays near its text's size");
    } catch (const moe::Error& e) {
        FUZZ_CHECK(e.kind() == moe::ErrorKind::BadInput, "a template error is BadInput");
    }
    return 0;
}
