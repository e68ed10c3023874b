// Scenario TOML: any text loads or fails with BadInput; whatever loads and validates saves to TOML that loads
// back equal (the round trip of issue 12), and its CLI flags parse back too.
#include "demos/params.hpp"
#include "demos/scenario.hpp"
#include "tests/fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    std::string text = fuzz_text(data, size);
    demos::Scenario s;
    try {
        s = demos::Scenario::from_toml(text, "fuzz.toml");
    } catch (const moe::Error& e) {
        FUZZ_CHECK(e.kind() == moe::ErrorKind::BadInput, "a load error is BadInput");
        return 0;
    }
    std::vector<std::string> problems = s.validate();  // must not crash on any loaded values
    std::string saved = s.to_toml();
    demos::Scenario back = demos::Scenario::from_toml(saved, "saved.toml");  // what we write always loads
    FUZZ_CHECK(back == s, "to_toml → from_toml gives the same scenario");
    if (problems.empty()) {
        demos::Scenario flags;
        for (const demos::ParamInfo& p : demos::scenario_params())
            if (p.type() != demos::ParamType::Bool)
                p.set_text(flags, p.get_text(s));
            else
                p.set_bool(flags, p.get_bool(s));
        FUZZ_CHECK(flags == s, "every parameter's text parses back");
    }
    return 0;
}
