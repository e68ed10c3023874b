// A recursive-descent parser and tree evaluator for lesson expressions. Small on purpose: instructors
// write these by hand, so every error says at which column the expression stopped making sense.
#include "demos/lesson_expr.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "demos/params.hpp"
#include "kernels/common/error.hpp"

namespace demos::lesson {

struct Expr::Node {
    enum Kind { Number, Name, Call, Unary, Binary } kind = Number;
    double number = 0;
    std::string name;  // Name, Call; operator for Unary/Binary
    std::vector<std::shared_ptr<const Node>> kids;
    int height = 1;  // 1 + the tallest kid: bounds every recursion over the tree (eval, collect, destructor)
};

namespace {

using NodeP = std::shared_ptr<const Expr::Node>;

const char* const kBuiltins[] = {"min", "max", "abs", "ceil", "floor", "round", "sqrt", "log2", "pow"};

// How many arguments each built-in takes; false when `name` is not a built-in.
bool builtin_arity(const std::string& name, std::size_t* lo, std::size_t* hi) {
    if (name == "min" || name == "max") return *lo = 1, *hi = kMaxCallArgs, true;
    if (name == "pow") return *lo = *hi = 2, true;
    for (const char* b : kBuiltins)
        if (name == b) return *lo = *hi = 1, true;
    return false;
}

class Parser {
  public:
    explicit Parser(const std::string& s) : s_(s) {}

    NodeP parse_all() {
        NodeP n = parse_or();
        skip();
        if (i_ < s_.size()) fail("unexpected '" + here() + "'");
        return n;
    }

  private:
    [[noreturn]] void fail(const std::string& what) const { MOE_BAD_INPUT("column " << i_ + 1 << ": " << what); }
    // The character at i_ as the user typed it: a whole UTF-8 sequence, or an escape for a control byte.
    std::string here() const { return printable(s_.substr(i_, std::max<std::size_t>(1, utf8_length_at(s_, i_)))); }
    // Parentheses, unary operators and operator chains all nest the tree; a hand-written expression never comes
    // near this, and a generated one cannot exhaust the stack.
    NodeP bounded(NodeP n) {
        if (n->height > kMaxExprDepth)
            fail("the expression nests more than " + std::to_string(kMaxExprDepth) +
                 " levels (operators, parentheses and calls); split it into [values]");
        return n;
    }
    static int height_of(const std::vector<NodeP>& kids) {
        int h = 0;
        for (auto& k : kids) h = std::max(h, k->height);
        return h + 1;
    }
    void skip() {
        while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    bool eat(const char* op) {
        skip();
        std::size_t n = std::char_traits<char>::length(op);
        if (s_.compare(i_, n, op) != 0) return false;
        // "<" must not swallow the "<" of "<=", nor "!" the "!" of "!="
        if (n == 1 && i_ + 1 < s_.size() && s_[i_ + 1] == '=' && (op[0] == '<' || op[0] == '>' || op[0] == '!'))
            return false;
        i_ += n;
        return true;
    }
    NodeP binary(const char* op, NodeP a, NodeP b) {
        auto n = std::make_shared<Expr::Node>();
        n->kind = Expr::Node::Binary;
        n->name = op;
        n->kids = {std::move(a), std::move(b)};
        n->height = height_of(n->kids);
        return bounded(n);
    }
    NodeP parse_or() {
        NodeP a = parse_and();
        while (eat("||")) a = binary("||", a, parse_and());
        return a;
    }
    NodeP parse_and() {
        NodeP a = parse_cmp();
        while (eat("&&")) a = binary("&&", a, parse_cmp());
        return a;
    }
    NodeP parse_cmp() {
        NodeP a = parse_sum();
        for (const char* op : {"<=", ">=", "==", "!=", "<", ">"})
            if (eat(op)) return binary(op, a, parse_sum());
        return a;
    }
    NodeP parse_sum() {
        NodeP a = parse_term();
        for (;;) {
            if (eat("+"))
                a = binary("+", a, parse_term());
            else if (eat("-"))
                a = binary("-", a, parse_term());
            else
                return a;
        }
    }
    NodeP parse_term() {
        NodeP a = parse_unary();
        for (;;) {
            if (eat("*"))
                a = binary("*", a, parse_unary());
            else if (eat("/"))
                a = binary("/", a, parse_unary());
            else
                return a;
        }
    }
    // Descending through '(' or a unary operator goes one level deeper before the kid exists, so the parser's own
    // recursion is bounded too.
    struct Deeper {
        Parser& p;
        explicit Deeper(Parser& parser) : p(parser) {
            if (++p.depth_ > kMaxExprDepth)
                p.fail("the expression nests more than " + std::to_string(kMaxExprDepth) +
                       " levels (operators, parentheses and calls); split it into [values]");
        }
        ~Deeper() { --p.depth_; }
    };
    NodeP parse_unary() {
        for (const char* op : {"-", "!"})
            if (eat(op)) {
                Deeper d(*this);
                auto n = std::make_shared<Expr::Node>();
                n->kind = Expr::Node::Unary;
                n->name = op;
                n->kids = {parse_unary()};
                n->height = height_of(n->kids);
                return bounded(n);
            }
        return parse_primary();
    }
    NodeP parse_primary() {
        skip();
        if (i_ >= s_.size()) fail("the expression ends too early");
        char c = s_[i_];
        if (eat("(")) {
            Deeper d(*this);
            NodeP n = parse_or();
            if (!eat(")")) fail("expected ')'");
            return n;
        }
        auto n = std::make_shared<Expr::Node>();
        if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
            const char* begin = s_.c_str() + i_;
            char* end = nullptr;
            n->number = std::strtod(begin, &end);
            if (end == begin) fail("malformed number");
            i_ += static_cast<std::size_t>(end - begin);
            return n;
        }
        if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
            std::size_t start = i_;
            while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_' ||
                                      (s_[i_] == '.' && i_ + 1 < s_.size() &&
                                       (std::isalpha(static_cast<unsigned char>(s_[i_ + 1])) || s_[i_ + 1] == '_'))))
                ++i_;
            n->name = s_.substr(start, i_ - start);
            if (n->name == "true" || n->name == "false") {
                n->number = n->name == "true" ? 1 : 0;
                n->name.clear();
                return n;
            }
            if (eat("(")) {
                Deeper d(*this);
                n->kind = Expr::Node::Call;
                if (!eat(")")) {
                    do {
                        if (n->kids.size() >= kMaxCallArgs)
                            fail(n->name + "() is given more than " + std::to_string(kMaxCallArgs) + " arguments");
                        n->kids.push_back(parse_or());
                    } while (eat(","));
                    if (!eat(")")) fail("expected ')' or ',' in the arguments of " + n->name + "()");
                }
                n->height = height_of(n->kids);
                return bounded(n);
            }
            n->kind = Expr::Node::Name;
            return n;
        }
        fail("unexpected '" + here() + "'");
    }

    const std::string& s_;
    std::size_t i_ = 0;
    int depth_ = 0;
};

double eval_node(const Expr::Node& n, const Lookup& lookup, const Call& call) {
    switch (n.kind) {
        case Expr::Node::Number:
            return n.number;
        case Expr::Node::Name: {
            std::optional<double> v = lookup ? lookup(n.name) : std::nullopt;
            if (!v) MOE_BAD_INPUT("unknown name '" << n.name << "'");
            return *v;
        }
        case Expr::Node::Unary: {
            double a = eval_node(*n.kids[0], lookup, call);
            return n.name == "-" ? -a : (a == 0.0 ? 1.0 : 0.0);
        }
        case Expr::Node::Binary: {
            const std::string& op = n.name;
            double a = eval_node(*n.kids[0], lookup, call);
            if (op == "&&") return a != 0.0 && eval_node(*n.kids[1], lookup, call) != 0.0 ? 1.0 : 0.0;
            if (op == "||") return a != 0.0 || eval_node(*n.kids[1], lookup, call) != 0.0 ? 1.0 : 0.0;
            double b = eval_node(*n.kids[1], lookup, call);
            if (op == "+") return a + b;
            if (op == "-") return a - b;
            if (op == "*") return a * b;
            if (op == "/") return a / b;  // x/0 gives inf or nan, which every comparison treats honestly
            if (op == "<") return a < b;
            if (op == "<=") return a <= b;
            if (op == ">") return a > b;
            if (op == ">=") return a >= b;
            if (op == "==") return a == b;
            if (op == "!=") return a != b;
            return 0.0;
        }
        case Expr::Node::Call: {
            std::vector<double> args;
            for (auto& k : n.kids) args.push_back(eval_node(*k, lookup, call));
            const std::string& f = n.name;
            if (is_builtin_function(f)) {
                CallSite site{f, {}};
                site.args.resize(args.size());
                std::string bad = check_builtin_call(site);
                if (!bad.empty()) MOE_BAD_INPUT(bad);
            }
            if (f == "min" || f == "max") {
                double r = args[0];
                for (double v : args) r = f == "min" ? std::min(r, v) : std::max(r, v);
                return r;
            }
            if (f == "pow") return std::pow(args[0], args[1]);
            if (f == "abs") return std::fabs(args[0]);
            if (f == "ceil") return std::ceil(args[0]);
            if (f == "floor") return std::floor(args[0]);
            if (f == "round") return std::round(args[0]);
            if (f == "sqrt") return std::sqrt(args[0]);
            if (f == "log2") return std::log2(args[0]);
            std::optional<double> v = call ? call(f, args) : std::nullopt;
            if (!v) MOE_BAD_INPUT("unknown function '" << f << "()'");
            return *v;
        }
    }
    return 0.0;
}

void collect(const Expr::Node& n, Expr::Node::Kind kind, std::vector<std::string>& out) {
    if (n.kind == kind && !(kind == Expr::Node::Call && is_builtin_function(n.name))) {
        bool seen = false;
        for (auto& s : out) seen = seen || s == n.name;
        if (!seen) out.push_back(n.name);
    }
    for (auto& k : n.kids) collect(*k, kind, out);
}

bool constant(const Expr::Node& n) {
    if (n.kind == Expr::Node::Name || (n.kind == Expr::Node::Call && !is_builtin_function(n.name))) return false;
    for (auto& k : n.kids)
        if (!constant(*k)) return false;
    return true;
}

std::optional<double> fold(const Expr::Node& n) {
    if (!constant(n)) return std::nullopt;
    try {
        return eval_node(n, {}, {});
    } catch (const moe::Error&) {
        return std::nullopt;  // a constant call with a bad arity: reported at its own call site
    }
}

void collect_calls(const Expr::Node& n, std::vector<CallSite>& out) {
    if (n.kind == Expr::Node::Call) {
        CallSite c;
        c.name = n.name;
        for (auto& k : n.kids) c.args.push_back(fold(*k));
        out.push_back(std::move(c));
    }
    for (auto& k : n.kids) collect_calls(*k, out);
}

}  // namespace

std::vector<CallSite> call_sites(const Expr& e) {
    std::vector<CallSite> out;
    if (e.root()) collect_calls(*e.root(), out);
    return out;
}

std::string check_builtin_call(const CallSite& c) {
    std::size_t lo = 0, hi = 0;
    if (!builtin_arity(c.name, &lo, &hi)) return "";
    std::ostringstream os;
    if (c.args.size() < lo || c.args.size() > hi) {
        os << c.name << "() takes " << lo;
        if (hi > lo) os << " to " << hi;
        os << " argument" << (lo == 1 && hi == 1 ? "" : "s") << ", got " << c.args.size();
        return os.str();
    }
    if (c.name == "sqrt" && c.args[0] && !(*c.args[0] >= 0))
        os << "sqrt(x): x = " << format_number(*c.args[0]) << " must be at least 0";
    if (c.name == "log2" && c.args[0] && !(*c.args[0] > 0))
        os << "log2(x): x = " << format_number(*c.args[0]) << " must be above 0";
    return os.str();
}

bool is_builtin_function(const std::string& name) {
    for (const char* b : kBuiltins)
        if (name == b) return true;
    return false;
}

Expr Expr::parse(const std::string& text) {
    if (text.size() > kMaxExprChars)
        MOE_BAD_INPUT("the expression is " << text.size() << " characters; at most " << kMaxExprChars);
    Expr e;
    e.text_ = text;
    Parser p(text);
    e.root_ = p.parse_all();
    return e;
}

double Expr::eval(const Lookup& lookup, const Call& call) const {
    if (!root_) MOE_BAD_INPUT("empty expression");
    return eval_node(*root_, lookup, call);
}

std::vector<std::string> Expr::names() const {
    std::vector<std::string> out;
    if (root_) collect(*root_, Node::Name, out);
    return out;
}

std::vector<Placeholder> scan_template(const std::string& text) {
    std::vector<Placeholder> out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '}') {
            if (i + 1 < text.size() && text[i + 1] == '}') {
                ++i;
                continue;
            }
            MOE_BAD_INPUT("a lone '}' at character " << i + 1 << " (write '}}' for a literal brace)");
        }
        if (text[i] != '{') continue;
        if (i + 1 < text.size() && text[i + 1] == '{') {
            ++i;
            continue;
        }
        std::size_t close = text.find('}', i);
        if (close == std::string::npos)
            MOE_BAD_INPUT("the placeholder at character " << i + 1 << " has no closing '}'");
        std::string inner = text.substr(i + 1, close - i - 1);
        Placeholder p;
        p.begin = i;
        p.end = close + 1;
        std::size_t colon = inner.rfind(':');
        if (colon != std::string::npos) {
            std::string d = inner.substr(colon + 1);
            if (d.empty() || d.size() > 2 || d.find_first_not_of("0123456789") != std::string::npos)
                MOE_BAD_INPUT("placeholder {" << inner << "}: after ':' comes the number of decimals, 0 to 12");
            p.digits = std::stoi(d);
            if (p.digits > 12) MOE_BAD_INPUT("placeholder {" << inner << "}: at most 12 decimals");
            inner = inner.substr(0, colon);
        }
        try {
            p.expr = Expr::parse(inner);
        } catch (const moe::Error& e) {
            MOE_BAD_INPUT("placeholder {" << inner << "}: " << e.what());
        }
        out.push_back(std::move(p));
        i = close;
    }
    return out;
}

std::string format_number(double v, int digits) {
    char buf[64];
    if (!std::isfinite(v)) return std::isnan(v) ? "n/a" : (v > 0 ? "inf" : "-inf");
    if (digits >= 0 && std::fabs(v) < 1e15) {
        std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    } else if (digits >= 0) {
        std::snprintf(buf, sizeof buf, "%.*g", std::max(3, digits), v);
    } else if (std::fabs(v) >= 1e15) {
        std::snprintf(buf, sizeof buf, "%.3g", v);  // 1e300 as "1e+300", not 301 digits cut to 63
    } else if (std::fabs(v - std::round(v)) < 1e-9 * std::max(1.0, std::fabs(v))) {
        std::snprintf(buf, sizeof buf, "%.0f", v);
    } else if (std::fabs(v) >= 1000) {
        std::snprintf(buf, sizeof buf, "%.0f", v);
    } else {
        std::snprintf(buf, sizeof buf, "%.3g", v);
    }
    std::string s = buf;
    return s == "-0" ? "0" : s;
}

std::string fill_template(const std::string& text, const std::function<double(const Expr&)>& value) {
    std::vector<Placeholder> ph = scan_template(text);
    std::string out;
    std::size_t at = 0;
    auto literal = [&](std::size_t from, std::size_t to) {
        for (std::size_t i = from; i < to; ++i) {
            out += text[i];
            if ((text[i] == '{' || text[i] == '}') && i + 1 < to && text[i + 1] == text[i]) ++i;
        }
    };
    for (auto& p : ph) {
        literal(at, p.begin);
        out += format_number(value(p.expr), p.digits);
        at = p.end;
    }
    literal(at, text.size());
    return out;
}

std::vector<std::string> Expr::functions() const {
    std::vector<std::string> out;
    if (root_) collect(*root_, Node::Call, out);
    return out;
}

}  // namespace demos::lesson
