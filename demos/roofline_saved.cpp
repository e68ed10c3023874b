// Saved sweeps as rooflines: `moelab bench experts --sweep --save` writes the run's ceilings and one row per
// (shape, tokens per expert, variant); the rows the roofline needs are auto's, the probes' and the PyTorch peer's.
#include "demos/roofline_saved.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "demos/atomic_file.hpp"
#include "demos/lesson_expr.hpp"
#include "kernels/common/error.hpp"

namespace demos {

namespace {

using nlohmann::json;

// A number at `key` of `j` (an object): finite and at least 0, or BadInput naming where.
double number(const json& j, const char* key, const std::string& where, double fallback = -1) {
    if (!j.contains(key) || j[key].is_null()) {
        if (fallback >= 0) return fallback;
        MOE_BAD_INPUT(where << ": no '" << key << "'");
    }
    if (!j[key].is_number()) MOE_BAD_INPUT(where << ": '" << key << "' is " << j[key].type_name() << ", not a number");
    const double v = j[key].get<double>();
    if (!std::isfinite(v) || v < 0) MOE_BAD_INPUT(where << ": '" << key << "' is " << v << "; allowed: 0 or more");
    return v;
}

std::string text(const json& j, const char* key) {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

// A count (d, F, E, k) in 1..limit.
int count(const json& j, const char* key, const std::string& where, int limit) {
    const double v = number(j, key, where);
    if (v < 1 || v > limit || v != std::floor(v))
        MOE_BAD_INPUT(where << ": '" << key << "' is " << v << "; allowed: a whole number in 1.." << limit);
    return int(v);
}

}  // namespace

std::vector<ExpertRoofline> rooflines_from_sweep_json(const std::string& body, const std::string& source) {
    const json doc = json::parse(body, nullptr, false);
    if (doc.is_discarded())
        MOE_BAD_INPUT(source << ": not JSON (expected `moelab bench experts --sweep --save` output)");
    if (!doc.is_object() || !doc.contains("ceilings") || !doc["ceilings"].is_object() || !doc.contains("rows") ||
        !doc["rows"].is_array())
        MOE_BAD_INPUT(source << ": not a saved benchmark (no 'ceilings' and 'rows'; expected `moelab bench experts "
                                "--sweep --save` output)");
    RooflineCeilings c;
    c.read_gbps = number(doc["ceilings"], "read_gbps", source + ": ceilings");
    c.gemm_tflops = number(doc["ceilings"], "gemm_tflops", source + ": ceilings");
    if (!(c.read_gbps > 0) || !(c.gemm_tflops > 0))
        MOE_BAD_INPUT(source << ": ceilings read " << c.read_gbps << " GB/s, GEMM " << c.gemm_tflops
                             << " TFLOP/s; both must be > 0");
    c.bandwidth = "read";
    c.device = text(doc, "device").empty() ? "a GPU" : text(doc, "device");
    c.source = lesson::Source::MeasuredGpu;
    const std::string date = text(doc, "date");
    c.origin = "ceilings measured on " + c.device + " at the start of the run" + (date.empty() ? "" : " of " + date);

    // Per shape, the points by tokens per expert (a later row of the same size replaces an earlier one).
    using Key = std::tuple<int, int, int, int>;
    std::map<Key, std::string> names;
    std::map<Key, std::map<double, RooflinePoint>> points;
    std::vector<Key> order;
    const json& rows = doc["rows"];
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const json& r = rows[i];
        const std::string where = source + ": row " + std::to_string(i + 1);
        if (!r.is_object()) MOE_BAD_INPUT(where << ": not an object");
        if (text(r, "stage") != "experts" || text(r, "skew") != "uniform") continue;
        const std::string variant = text(r, "variant");
        const bool is_auto = variant.rfind("auto", 0) == 0;
        const bool is_probe = variant == "probe-stream" || variant == "probe-dense";
        if (!is_auto && !is_probe && variant != "probe-balanced") continue;
        const Key k{count(r, "hidden", where, 1 << 20), count(r, "ffn", where, 1 << 20),
                    count(r, "experts", where, 1 << 16), count(r, "top_k", where, 1 << 16)};
        if (std::get<3>(k) > std::get<2>(k)) MOE_BAD_INPUT(where << ": top_k is more than the experts");
        const double tpe = number(r, "tokens_per_expert", where);
        if (!(tpe > 0)) MOE_BAD_INPUT(where << ": tokens_per_expert must be > 0");
        const double median = number(r, "median_ms", where);
        if (!points.count(k)) order.push_back(k), names[k] = text(r, "shape");
        RooflinePoint& p = points[k][tpe];
        p.tokens_per_expert = tpe;
        if (is_auto) {
            p.impl = variant.size() > 5 ? variant.substr(5) : "";  // "auto:wgmma"
            p.median_ms = median;
            p.p95_ms = std::max(median, number(r, "p95_ms", where, median));
            p.floor_ms = number(r, "floor_ms", where);
            // elements outside tolerance (-1: not checked); any huge count is as bad as 2^62
            const double wrong = r.contains("wrong") && r["wrong"].is_number() ? r["wrong"].get<double>() : -1;
            p.wrong = !(wrong >= 0) ? -1 : wrong < 0x1p62 ? std::int64_t(wrong) : std::int64_t(1) << 62;
            p.clocks = text(r, "clocks");
            p.source = lesson::Source::MeasuredGpu;
            p.peer_ms = number(r, "torch_ms", where, 0);
            p.peer = p.peer_ms > 0 ? "torch." + (text(r, "torch_variant").empty() ? std::string("_grouped_mm")
                                                                                  : text(r, "torch_variant"))
                                   : "";
        } else if (is_probe) {
            p.probe = variant.substr(6);
            p.probe_ms = median;
        } else {
            p.balanced_ms = median;
        }
    }
    std::vector<ExpertRoofline> out;
    for (const Key& k : order) {
        const RooflineShape s{std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k)};
        std::vector<RooflinePoint> pts;
        double lo = 1, hi = 4096;
        for (const auto& [tpe, p] : points[k]) {
            if (p.median_ms <= 0) continue;  // a probe without auto's row
            pts.push_back(p);
            lo = std::min(lo, tpe), hi = std::max(hi, tpe);
        }
        if (pts.empty()) continue;
        ExpertRoofline rl = roofline_lines(s, c, lo, hi);
        rl.shape_name = names[k];
        rl.points = std::move(pts);
        rl.recorded = c.device + (date.empty() ? "" : ", " + date);
        rl.notes.push_back("Measured on " + rl.recorded + " and saved there (`moelab bench experts --sweep --save`), " +
                           "read from " + source + ": not timed on this machine. At each point the engine's own " +
                           "choice (auto), checked against the CPU reference, beside its probe and the PyTorch peer " +
                           "where the run timed them; ceilings at the start of that run: read " +
                           lesson::format_number(c.read_gbps) + " GB/s (16-byte loads), bf16 GEMM " +
                           lesson::format_number(c.gemm_tflops) + " TFLOP/s (cuBLAS 8192³).");
        out.push_back(std::move(rl));
    }
    if (out.empty())
        MOE_BAD_INPUT(source << ": no expert FFN rows with uniform routing and an `auto` variant (expected `moelab "
                                "bench experts --sweep --save` output)");
    return out;
}

std::vector<ExpertRoofline> load_rooflines(const std::string& path, const std::string& flag) {
    std::string body, err;
    if (!read_regular_file(path, std::size_t(64) << 20, &body, &err)) MOE_BAD_INPUT(flag << " " << path << ": " << err);
    return rooflines_from_sweep_json(body, flag + " " + path);
}

std::vector<ExpertRoofline> load_rooflines_for(const std::string& path, const RooflineShape& shape,
                                               const std::string& flag) {
    std::vector<ExpertRoofline> set = load_rooflines(path, flag);
    if (!find_roofline(set, shape))
        MOE_BAD_INPUT(flag << " " << path << ": no sweep of this scenario's shape (--hidden " << shape.hidden
                           << " --ffn " << shape.ffn << " --experts " << shape.experts << " --top-k " << shape.top_k
                           << "); it has " << describe_shapes(set));
    return set;
}

const std::vector<ExpertRoofline>& recorded_rooflines() {
    static const std::vector<ExpertRoofline> kRecorded = [] {
        std::vector<ExpertRoofline> all;
        int n = 0;
        const EmbeddedFile* files = embedded_roofline_runs(&n);
        for (int i = 0; i < n; ++i) {
            const std::string body(reinterpret_cast<const char*>(files[i].data), files[i].size);
            for (ExpertRoofline& rl :
                 rooflines_from_sweep_json(body, std::string("kernels/bench/runs/") + files[i].name))
                if (!find_roofline(all, rl.shape)) all.push_back(std::move(rl));
        }
        return all;
    }();
    return kRecorded;
}

const ExpertRoofline* find_roofline(const std::vector<ExpertRoofline>& set, const RooflineShape& shape) {
    for (const ExpertRoofline& rl : set)
        if (rl.shape == shape) return &rl;
    return nullptr;
}

std::string describe_shapes(const std::vector<ExpertRoofline>& set) {
    std::string s;
    for (const ExpertRoofline& rl : set) {
        if (!s.empty()) s += ", ";
        s += (rl.shape_name.empty() ? std::string("a shape") : rl.shape_name) + " (--hidden " +
             std::to_string(rl.shape.hidden) + " --ffn " + std::to_string(rl.shape.ffn) + " --experts " +
             std::to_string(rl.shape.experts) + " --top-k " + std::to_string(rl.shape.top_k) + ")";
    }
    return s;
}

}  // namespace demos
