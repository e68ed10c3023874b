// FileReader (demos/lesson_parse.hpp): reads one lesson file's keys and tables, collecting every problem with its
// line, and an override table checked against the scenario's own keys and types.
#include <algorithm>
#include <sstream>

#include "demos/lesson_expr.hpp"
#include "demos/lesson_parse.hpp"
#include "kernels/common/error.hpp"

namespace demos::lesson_parse {

std::string misplaced_hint(const std::string& key) {
    static const char* top[] = {"id", "title", "concept", "order", "intro", "note", "checks"};
    for (auto* t : top)
        if (key == t)
            return " ('" + key + "' is a top-level key: in TOML it must come before the first [table] header)";
    return "";
}

void FileReader::only(const toml::table& t, std::initializer_list<const char*> allowed, const std::string& where) {
    for (auto&& [k, v] : t) {
        bool ok = false;
        for (auto* a : allowed) ok = ok || k.str() == a;
        if (!ok) {
            std::string list;
            for (auto* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
            problem(line_of(v), "unknown key '" + std::string(k.str()) + "' in " + where + "; allowed: " + list +
                                    misplaced_hint(std::string(k.str())));
        }
    }
}

bool FileReader::str(const toml::table& t, const char* key, std::string* out, bool required, int table_line,
                     const std::string& where) {
    const toml::node* n = t.get(key);
    if (!n) {
        if (required) problem(table_line, where + ": missing key '" + key + "'");
        return false;
    }
    if (auto v = n->value<std::string>()) {
        *out = *v;
        if (required && out->empty()) problem(line_of(*n), where + ": '" + key + "' must not be empty");
        return true;
    }
    problem(line_of(*n), where + ": '" + key + "' must be a string");
    return false;
}

bool FileReader::num(const toml::table& t, const char* key, double* out, int* line) {
    const toml::node* n = t.get(key);
    if (!n) return false;
    if (line) *line = line_of(*n);
    if (auto v = n->value<double>()) {
        *out = *v;
        return true;
    }
    problem(line_of(*n), std::string("'") + key + "' must be a number");
    return false;
}

bool FileReader::integer(const toml::table& t, const char* key, int* out) {
    const toml::node* n = t.get(key);
    if (!n) return false;
    if (n->is_integer()) {
        *out = static_cast<int>(*n->value<std::int64_t>());
        return true;
    }
    problem(line_of(*n), std::string("'") + key + "' must be a whole number");
    return false;
}

const toml::table* FileReader::table(const toml::table& t, const char* key, bool required, int table_line) {
    const toml::node* n = t.get(key);
    if (!n) {
        if (required) problem(table_line, std::string("missing table [") + key + "]");
        return nullptr;
    }
    if (auto* tt = n->as_table()) return tt;
    problem(line_of(*n), std::string("'") + key + "' must be a table");
    return nullptr;
}

bool FileReader::expr(const toml::table& t, const char* key, LessonExpr* out, bool required, int table_line,
                      const std::string& where) {
    if (!str(t, key, &out->text, required, table_line, where)) return false;
    out->line = line_of(*t.get(key));
    return parses(*out, where + " '" + key + "'");
}

bool FileReader::parses(const LessonExpr& e, const std::string& what) {
    try {
        lesson::Expr::parse(e.text);
        return true;
    } catch (const moe::Error& err) {
        // A long expression is quoted by its start only: the error says where in it things went wrong.
        std::size_t cut = std::min<std::size_t>(100, e.text.size());
        while (cut > 0 && cut < e.text.size() && (static_cast<unsigned char>(e.text[cut]) & 0xC0) == 0x80) --cut;
        const std::string shown =
            e.text.size() > 120 ? e.text.substr(0, cut) + "… (" + std::to_string(e.text.size()) + " characters)"
                                : e.text;
        problem(e.line, what + " = \"" + shown + "\": " + err.what());
        return false;
    }
}

namespace {

// The scenario's canonical keys and their TOML types, taken from a default scenario's own TOML.
const toml::table& scenario_keys() {
    static const toml::table t = toml::parse(Scenario{}.to_toml());
    return t;
}

}  // namespace

std::string read_overrides(FileReader& r, const toml::table& t, const std::string& where) {
    const toml::table& keys = scenario_keys();
    for (auto&& [k, v] : t) {
        const toml::node* ref = keys.get(k.str());
        if (!ref) {
            r.problem(line_of(v), where + ": unknown scenario key '" + std::string(k.str()) + "'" +
                                      misplaced_hint(std::string(k.str())));
            continue;
        }
        bool ok = ref->type() == v.type() || (ref->is_floating_point() && v.is_integer());
        if (!ok) r.problem(line_of(v), where + ": scenario key '" + std::string(k.str()) + "' has the wrong type");
    }
    toml::table plain = t;
    plain.is_inline(false);  // `{ a = 1 }` in the file; "a = 1" lines as the overrides text
    std::ostringstream os;
    os << plain;
    return os.str();
}

}  // namespace demos::lesson_parse
