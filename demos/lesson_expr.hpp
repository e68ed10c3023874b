// Lesson expressions: the small arithmetic-and-logic language a lesson file uses for its answer, its
// predicates and its {placeholders}, e.g. "k4.comm_bytes / comm_bytes" or "guess > 6 && guess < 7.5".
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace demos::lesson {

// Resolves a name (possibly dotted, "k4.comm_bytes") to a number; nullopt when unknown.
using Lookup = std::function<std::optional<double>(const std::string& name)>;
// Calls a function that is not built in ("split_hot", "prefill.roofline_ms"); nullopt when unknown.
using Call = std::function<std::optional<double>(const std::string& name, const std::vector<double>& args)>;

// Grammar (C-like precedence):  or: and ('||' and)*   and: cmp ('&&' cmp)*   cmp: sum (op sum)?
// with op one of < <= > >= == !=,  sum: term (('+'|'-') term)*,  term: unary (('*'|'/') unary)*,
// unary: ('-'|'!') unary | primary,  primary: number | true | false | name | name '(' args ')' | '(' or ')'.
// Truth is 1, falsehood 0; any non-zero number is true. Built-in functions: min, max, abs, ceil, floor,
// round, sqrt, log2, pow.
class Expr {
  public:
    Expr() = default;
    // Throws moe::Error(BadInput) "column N: what is wrong" (columns count from 1).
    static Expr parse(const std::string& text);

    // Throws moe::Error(BadInput) naming an unknown name or function, or a wrong argument count.
    double eval(const Lookup& lookup, const Call& call = {}) const;
    bool truth(const Lookup& lookup, const Call& call = {}) const { return eval(lookup, call) != 0.0; }

    std::vector<std::string> names() const;      // every name it reads, in order of first use
    std::vector<std::string> functions() const;  // every non-built-in function it calls
    const std::string& text() const { return text_; }
    bool empty() const { return !root_; }

    struct Node;
    const Node* root() const { return root_.get(); }

  private:
    std::shared_ptr<const Node> root_;
    std::string text_;
};

bool is_builtin_function(const std::string& name);

// Limits checked by Expr::parse, so no expression can exhaust the stack or memory: its length, how deep it
// nests (parentheses, unary operators, operator chains and calls all count) and the arguments of one call.
constexpr std::size_t kMaxExprChars = 4096;
constexpr int kMaxExprDepth = 100;
constexpr std::size_t kMaxCallArgs = 64;

// One function call found by a static walk of an expression (nothing is evaluated but constants): its name, and
// each argument's value when the argument is a constant ("load(2)", "pow(2, -1)"), nullopt when it reads a name.
struct CallSite {
    std::string name;
    std::vector<std::optional<double>> args;
};
std::vector<CallSite> call_sites(const Expr& e);
// A built-in call's problem ("min() takes 1 to 64 arguments, got 0", "sqrt(x): x = -1 must be at least 0"); ""
// when fine, or when `site` is not a built-in.
std::string check_builtin_call(const CallSite& site);

// A {placeholder} in lesson text: "{straggler_factor}" or "{comm_mib:1}" (one decimal). "{{" and "}}" are
// literal braces. Throws BadInput on an unclosed brace or a malformed expression, naming the placeholder.
struct Placeholder {
    std::size_t begin = 0, end = 0;  // [begin, end) in the text, braces included
    Expr expr;
    int digits = -1;  // -1: a readable default
};
std::vector<Placeholder> scan_template(const std::string& text);
// Replaces every placeholder with format_number(value(expr), digits) and unescapes "{{" and "}}".
std::string fill_template(const std::string& text, const std::function<double(const Expr&)>& value);
// Whole numbers without decimals, others with three significant digits (or `digits` decimals when ≥ 0).
std::string format_number(double v, int digits = -1);

}  // namespace demos::lesson
