// The checks `moelab lessons check` and every lesson load run on a lesson file beyond parse_lesson: size and
// nesting limits before the TOML parser, and a static check of every function call in every expression and
// {placeholder} (arity, constant arguments in range), so a bad call fails with file:line before any student
// answers.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "demos/lesson.hpp"

namespace demos {

// parse_lesson plus the checks above; false, with every problem appended, when anything is wrong.
bool parse_lesson_checked(const std::string& text, const std::string& source, Lesson* out,
                          std::vector<LessonProblem>* problems);

// A lesson function's call (split_hot, roofline_ms, load; see lesson_numbers.hpp) with its arguments as far as
// they are constants (nullopt otherwise), for a run with `experts` experts: "" when fine, else what is wrong.
std::string check_lesson_call(const std::string& fn, const std::vector<std::optional<double>>& args, int experts);

}  // namespace demos
