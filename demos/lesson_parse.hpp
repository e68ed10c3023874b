// The pieces of parse_lesson (demos/lesson.cpp) kept in files of their own: FileReader, which reads one file's keys
// collecting problems (lesson_reader.cpp), and the check of every name the lesson's expressions use (lesson_names.cpp).
#pragma once
#include <toml++/toml.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "demos/lesson.hpp"

namespace demos::lesson_parse {

inline int line_of(const toml::node& n) { return static_cast<int>(n.source().begin.line); }

// TOML puts every key after a [table] header into that table, so a top-level key written late lands in
// the wrong place. The most common mistake in a lesson file; say so.
std::string misplaced_hint(const std::string& key);

// Reads one file, collecting problems instead of throwing, so an instructor sees all of them at once.
class FileReader {
  public:
    FileReader(std::string source, std::vector<LessonProblem>* problems) : source_(std::move(source)), out_(problems) {}

    void problem(int line, const std::string& msg) {
        out_->push_back({source_, line, msg});
        ++count_;
    }
    int count() const { return count_; }
    const std::string& source() const { return source_; }

    // Reports every key of `t` not in `allowed`.
    void only(const toml::table& t, std::initializer_list<const char*> allowed, const std::string& where);
    bool str(const toml::table& t, const char* key, std::string* out, bool required, int table_line,
             const std::string& where);
    bool num(const toml::table& t, const char* key, double* out, int* line = nullptr);
    bool integer(const toml::table& t, const char* key, int* out);
    const toml::table* table(const toml::table& t, const char* key, bool required, int table_line);
    // An expression from a string value; parse errors name the line and the column inside the expression.
    bool expr(const toml::table& t, const char* key, LessonExpr* out, bool required, int table_line,
              const std::string& where);
    bool parses(const LessonExpr& e, const std::string& what);

  private:
    std::string source_;
    std::vector<LessonProblem>* out_;
    int count_ = 0;
};

// Checks an override table against the scenario's keys and types; returns its TOML text.
std::string read_overrides(FileReader& r, const toml::table& t, const std::string& where);

// Every expression may read the run's numbers, RUN.number for each extra run, params and values;
// misconceptions also read `guess`. Names outside that set are typos, reported with their line.
void check_names(FileReader& r, const Lesson& L, int reveal_line, int explanation_line);

}  // namespace demos::lesson_parse
