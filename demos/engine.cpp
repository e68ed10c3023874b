// The engine: resolves the backend, checks memory, runs the scenario's stages on it, and turns the raw
// LayerRun into a Result whose every number says where it came from.
#include "demos/engine.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <numeric>
#include <sstream>

#include "demos/npy.hpp"
#include "demos/pipeline.hpp"
#include "demos/pipeline_measured.hpp"
#include "kernels/api.hpp"
#include "kernels/common/error.hpp"
#include "kernels/cpu/parallel.hpp"
#include "kernels/nccl/nccl_api.hpp"
#if defined(MOELAB_HAVE_CUDA)
#include "kernels/cuda/launchers.hpp"
#endif

namespace demos {
namespace {

std::size_t host_available_bytes() {
    std::ifstream f("/proc/meminfo");
    std::string key;
    std::size_t kb = 0;
    std::string unit;
    while (f >> key >> kb >> unit)
        if (key == "MemAvailable:") return kb * 1024;
    return std::size_t(8) << 30;
}

std::string gib(double b) {
    std::ostringstream os;
    os.precision(3);
    os << b / double(1ull << 30) << " GiB";
    return os.str();
}

void check_memory(const Scenario& s, const moe::LayerSpec& spec, bool experts, const std::string& backend) {
    std::size_t need = moe::layer_bytes(spec, experts);
    std::size_t have = backend == "cuda" ? moe::gpu::free_memory_bytes(0) : host_available_bytes() * 9 / 10;
    if (need > have) {
        std::ostringstream os;
        os << "--tokens " << s.tokens << " --experts " << s.experts << " --hidden " << s.hidden << " --ffn " << s.ffn
           << ": this run needs about " << gib(double(need)) << " of " << (backend == "cuda" ? "GPU" : "host")
           << " memory but only " << gib(double(have)) << " is available; lower --tokens, --hidden, --ffn or --experts"
           << (experts ? ", or use `moelab run routing`, which needs no expert weights" : "");
        throw moe::Error(moe::ErrorKind::BadInput, os.str());
    }
}

void dump(const std::string& dir, const moe::LayerRun& run, const Scenario& s) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) MOE_BAD_INPUT("--dump " << dir << ": cannot create the directory: " << ec.message());
    const auto& t = run.tensors;
    const std::int64_t T = s.tokens, E = s.experts, k = s.top_k, d = s.hidden, rows = run.rows;
    auto path = [&](const char* n) { return (std::filesystem::path(dir) / n).string(); };
    write_npy_bf16(path("x.npy"), t.x, {T, d});
    write_npy(path("logits.npy"), t.logits, {T, E});
    write_npy(path("topk_ids.npy"), t.topk_ids, {T, k});
    write_npy(path("topk_weights.npy"), t.topk_w, {T, k});
    write_npy(path("counts.npy"), t.counts, {E});
    write_npy(path("offsets.npy"), t.offsets, {E + 1});
    write_npy(path("packed_order.npy"), t.row_token, {rows});
    write_npy(path("inverse_map.npy"), t.inv, {T, k});
    if (!t.y_packed.empty()) write_npy_bf16(path("expert_outputs.npy"), t.y_packed, {rows, d});
    if (!t.out.empty()) write_npy_bf16(path("combine_output.npy"), t.out, {T, d});
    std::ofstream(path("scenario.toml")) << s.to_toml();
}

void fill_loads(Result& r, const moe::LayerRun& run, const Scenario& s) {
    r.demand = run.demand;
    r.expert_loads = run.counts;
    r.capacity = run.capacity;
    r.dropped = run.dropped;
    double kept = std::accumulate(r.expert_loads.begin(), r.expert_loads.end(), 0.0);
    r.mean_load = kept / s.experts;
    auto mx = std::max_element(r.expert_loads.begin(), r.expert_loads.end());
    r.hottest_expert = static_cast<int>(mx - r.expert_loads.begin());
    r.straggler_factor = r.mean_load > 0 ? double(*mx) / r.mean_load : 0.0;
    r.rank_loads.assign(s.ranks, 0);
    for (int e = 0; e < s.experts; ++e)
        r.rank_loads[moe::comm::rank_of_expert(e, s.experts, s.ranks)] += r.expert_loads[e];
    double rmean = kept / s.ranks;
    r.rank_straggler = rmean > 0 ? double(*std::max_element(r.rank_loads.begin(), r.rank_loads.end())) / rmean : 0;
}

void fill_comm(Result& r, const moe::LayerRun& run, const Scenario& s) {
    r.ranks = s.ranks;
    r.bytes_per_elem = s.bytes_per_elem();
    auto tr = moe::comm::traffic(run.tensors.topk_ids.data(), s.tokens, s.top_k, s.experts, s.ranks, s.hidden,
                                 r.bytes_per_elem);
    r.seed_bytes = tr.seed_bytes;
    r.routed_bytes = tr.routed_bytes;
    r.dedup_bytes = tr.dedup_bytes;
    r.traffic_tokens = tr.tokens;
    r.traffic_bytes.resize(tr.tokens.size());
    for (std::size_t i = 0; i < tr.tokens.size(); ++i)
        r.traffic_bytes[i] = double(tr.tokens[i]) * s.hidden * r.bytes_per_elem;
    if (s.ranks > 1) {
        // No link is crossed on one device: the transfer time is modelled from the busiest rank's bytes.
        double worst = 0;
        for (int src = 0; src < s.ranks; ++src) {
            double b = 0;
            for (int dst = 0; dst < s.ranks; ++dst)
                if (dst != src) b += r.traffic_bytes[std::size_t(src) * s.ranks + dst];
            worst = std::max(worst, b);
        }
        r.comm_ms = worst / (s.link_gbps * 1e9) * 1e3;
        r.comm_time_provenance = Provenance::Modeled;
    }
}

void fill_timeline(Result& r) {
    double t = 0;
    for (auto& st : r.stages) {
        Span sp;
        sp.lane = r.backend;
        sp.label = st.stage;
        sp.start_ms = t;
        sp.end_ms = t + st.median_ms;
        sp.provenance = st.provenance;
        r.timeline.push_back(sp);
        t = sp.end_ms;
    }
}

// Copy bandwidth (read + written bytes per second) of the backend's memory: the floor of a memory-bound stage
// is the bytes it must move over this. The GPU's is measured once per process on buffers larger than L2; the
// CPU's on a buffer as large as the pack's and with the same threads, so caches favour both alike.
double copy_gbps(const std::string& backend, std::size_t pack_bytes) {
    if (backend == "cuda") {
        static std::mutex mu;
        static double gpu = 0;
        std::lock_guard<std::mutex> lock(mu);
#if defined(MOELAB_HAVE_CUDA)
        if (gpu == 0) gpu = moe::gpu::measure_copy_gbps(std::size_t(256) << 20, 20);
#endif
        return gpu;
    }
    const std::size_t bytes = std::max<std::size_t>(pack_bytes / 2, 1 << 20);
    std::vector<char> a(bytes, 1), b(bytes, 0);
    std::vector<double> ms;
    for (int i = 0; i < 6; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        moe::cpu::parallel_for(std::int64_t(bytes), 0, 1 << 16, [&](std::int64_t lo, std::int64_t hi) {
            std::memcpy(b.data() + lo, a.data() + lo, std::size_t(hi - lo));
        });
        if (i > 0)
            ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        a[i] = b[bytes - 1 - i];  // keep the copies observable
    }
    std::sort(ms.begin(), ms.end());
    return 2.0 * double(bytes) / (ms[ms.size() / 2] * 1e-3) / 1e9;
}

// The layer over real GPUs through NCCL, overlapped by chunks of local experts: every rank's spans measured on its
// own compute and comm streams. The slowest rank sets each stage's time (the layer waits for it); the timeline has
// two lanes per rank ("rank g compute", "rank g comm"); each pair's dispatch bytes are also timed alone.
// Chunks pay from about 16384 tokens a rank: below, each chunk's expert GEMMs are too short to hide an exchange and
// the copies slow them, so one chunk on its own streams is faster (2x H200, kernels/nccl/README.md, round 3).
void run_on_nccl(Result& r, const Scenario& s, const moe::LayerSpec& spec, moe::LayerRunOptions opt) {
    moe::nccl::EpRun ep;
    opt.keep_routing = true;
    moe::nccl::EpOptions eo;
    eo.overlap = true;
    eo.chunks = spec.tokens / s.ranks >= 16384 ? std::min(4, spec.experts / s.ranks) : 1;
    eo.pair_probe = true;
    moe::nccl::run_ep_layer(spec, s.ranks, opt, eo, ep);
    r.backend = "nccl";
    r.device = ep.device + ", NCCL " + ep.nccl_version;
    moe::LayerRun lr;
    lr.counts = ep.counts;
    lr.demand = ep.demand;
    lr.capacity = ep.capacity;
    lr.dropped = ep.dropped;
    lr.tensors.topk_ids = ep.topk_ids;
    r.loads_provenance = r.comm_provenance = Provenance::MeasuredGpu;
    fill_loads(r, lr, s);
    fill_comm(r, lr, s);
    std::vector<std::vector<StageTime>> per_rank(ep.ranks);
    for (int g = 0; g < ep.ranks; ++g)
        for (auto& smp : ep.rank_stages[g]) per_rank[g].push_back(summarize(smp, Provenance::MeasuredGpu));
    for (std::size_t i = 0; i < ep.stage_names.size(); ++i) {
        int slow = 0;
        for (int g = 1; g < ep.ranks; ++g)
            if (per_rank[g][i].median_ms > per_rank[slow][i].median_ms) slow = g;
        r.stages.push_back(per_rank[slow][i]);
    }
    double worst = 0;
    for (int g = 0; g < ep.ranks; ++g) {
        double comm = 0;
        for (auto& st : per_rank[g])
            if (st.stage.rfind("a2a", 0) == 0) comm += st.median_ms;
        worst = std::max(worst, comm);
    }
    for (const auto& e : ep.spans) {
        Span sp;
        sp.lane = "rank " + std::to_string(e.rank) + " " + e.lane;
        sp.label = e.chunk >= 0 ? e.label + " c" + std::to_string(e.chunk) : e.label;
        sp.rank = e.rank;
        sp.micro_batch = std::max(e.chunk, 0);
        sp.start_ms = e.start_ms;
        sp.end_ms = e.end_ms;
        sp.provenance = Provenance::MeasuredGpu;
        r.timeline.push_back(sp);
    }
    r.comm_ms = worst;
    r.comm_time_provenance = Provenance::MeasuredGpu;
    r.traffic_ms = ep.pair_ms;
    r.traffic_ms_provenance = Provenance::MeasuredGpu;
    const std::string moved =
        ep.transport == "nccl" ? "NCCL all-to-all" : "peer copies on the copy engines (" + ep.transport + ", no SMs)";
    r.notes.push_back("Ran on " + std::to_string(s.ranks) + " GPUs" +
                      (ep.processes > 1 ? " (one process per GPU)" : "") + ", rows moved by " + moved +
                      ", compute and exchanges on separate streams in " + std::to_string(eo.chunks) +
                      (eo.chunks == 1 ? " chunk" : " chunks") +
                      ": every time is measured; 'wait' is a rank waiting for the slowest one. moelab bench ep-layer "
                      "compares it with the plain schedule (NCCL, one stream).");
}

}  // namespace

StageTime summarize(const moe::StageSamples& s, Provenance p) {
    StageTime t;
    t.stage = s.stage;
    t.provenance = p;
    t.repeats = static_cast<int>(s.ms.size());
    if (s.ms.empty()) return t;
    auto v = s.ms;
    std::sort(v.begin(), v.end());
    t.min_ms = v.front();
    t.median_ms = v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
    t.p95_ms = v[std::min(v.size() - 1, static_cast<std::size_t>(std::ceil(0.95 * v.size())) - 1)];
    return t;
}

std::string resolve_backend(const Scenario& s, std::string* why) {
    if (s.backend == "cpu") return "cpu";
    bool have_gpu = !moe::gpu::devices().empty();
    if (s.backend == "cuda") {
        if (!have_gpu)
            throw moe::Error(moe::ErrorKind::NoDevice,
                             "--backend cuda: no usable GPU: " + moe::gpu::unavailable_reason() +
                                 "; use --backend cpu (the reference) or --backend auto");
        return "cuda";
    }
    if (have_gpu) return "cuda";
    if (why) *why = moe::gpu::unavailable_reason();
    return "cpu";
}

Result run(const Scenario& s, Demo demo, const RunControl& ctl) {
    s.check();
    Result r;
    r.scenario = s;
    r.demo = demo;
    std::string why;
    r.backend = resolve_backend(s, &why);
    const Provenance meas = r.backend == "cuda" ? Provenance::MeasuredGpu : Provenance::MeasuredCpu;
    if (r.backend == "cpu") {
        r.add(Result::Caveat::CpuReference);
        r.notes.push_back("Numbers come from the CPU reference implementation" +
                          (why.empty() ? std::string(" (--backend cpu)") : " because no GPU is usable: " + why) + ".");
    }
    if (s.ranks > 1) r.add(Result::Caveat::EmulatedRanks);
    if (s.ranks > 1)
        r.notes.push_back("The " + std::to_string(s.ranks) +
                          " ranks are emulated on one device: placement and traffic are counted from the real "
                          "routing, transfer times are modelled from --link-gbps.");

    const moe::LayerSpec spec = s.layer_spec();
    moe::LayerRunOptions opt;
    opt.repeats = s.repeats;
    opt.warmup = r.backend == "cuda" ? 2 : 0;
    opt.run_experts = demo == Demo::Layer;
    opt.keep_tensors = !ctl.dump_dir.empty();
    opt.keep_routing = true;
    opt.cancel = ctl.cancel;
    auto run_once = [&](const moe::LayerSpec& sp, moe::LayerRunOptions& o, float lo, float hi) {
        if (ctl.progress)
            o.progress = [&, lo, hi](float f, const char* what) { ctl.progress(lo + (hi - lo) * f, what); };
        moe::LayerRun lr;
        check_memory(s, sp, o.run_experts, r.backend);
        if (r.backend == "cuda")
            moe::gpu::run_layer(sp, o, lr);
        else
            moe::cpu::run_layer(sp, o, lr);
        return lr;
    };

    if (demo == Demo::Pipeline) {
        // The pipeline is modelled; the layer's routing still runs for the loads and traffic it shows.
        opt.run_experts = false;
    }
    if (demo == Demo::Layer && s.ranks > 1 && r.backend == "cuda") {
        const int have = moe::nccl::built() ? moe::nccl::usable_gpus() : 0;
        std::string why_not;
        if (have < s.ranks)
            why_not = "this machine has " + std::to_string(have) + " GPU(s) usable through NCCL";
        else if (!ctl.dump_dir.empty())
            why_not = "--dump is written from the one-device run";
        if (why_not.empty()) {
            r.notes.erase(std::remove_if(r.notes.begin(), r.notes.end(),
                                         [](const std::string& n) { return n.find("emulated") != std::string::npos; }),
                          r.notes.end());
            r.caveats &= ~unsigned(Result::Caveat::EmulatedRanks);
            check_memory(s, spec, true, r.backend);
            run_on_nccl(r, s, spec, opt);
            r.pipeline = simulate_pipeline(pipeline_input(s), &r.model_timeline);
            if (ctl.progress) ctl.progress(1.0f, "done");
            return r;
        }
        r.notes.push_back("Not run over " + std::to_string(s.ranks) + " real GPUs: " + why_not + ".");
    }
    moe::LayerRun lr = run_once(spec, opt, 0.0f, demo == Demo::Dispatch ? 0.25f : 1.0f);
    r.device = lr.device;
    r.experts_impl = lr.experts_impl;
    r.loads_provenance = r.comm_provenance = meas;
    // Ranks played by one device: the traffic is counted from the real routing, but no link carried it.
    if (r.has(Result::Caveat::EmulatedRanks)) r.comm_provenance = Provenance::Emulated;
    fill_loads(r, lr, s);
    fill_comm(r, lr, s);
    for (auto& st : lr.stages) r.stages.push_back(summarize(st, meas));
    fill_timeline(r);
    if (!ctl.dump_dir.empty()) dump(ctl.dump_dir, lr, s);

    if (demo == Demo::Dispatch) {
        const moe::Strategy all[] = {moe::Strategy::Sort, moe::Strategy::Atomic, moe::Strategy::Scan,
                                     moe::Strategy::NoPack};
        for (int i = 0; i < 4; ++i) {
            moe::LayerSpec sp = spec;
            sp.strategy = all[i];
            moe::LayerRunOptions o = opt;
            o.keep_tensors = false;
            o.keep_routing = false;
            // Packing takes a millisecond or less: warm up and take a few repeats so noise shows as noise.
            o.warmup = std::max(o.warmup, 1);
            o.repeats = std::max(o.repeats, 5);
            moe::LayerRun one = run_once(sp, o, 0.25f + 0.1875f * i, 0.25f + 0.1875f * (i + 1));
            Result::StrategyTime st;
            st.strategy = moe::dispatch::strategy_name(all[i]);
            for (auto& smp : one.stages)
                if (smp.stage == "dispatch") st.time = summarize(smp, meas);
            double row = double(s.hidden) * 2;  // the kernels move bf16 rows
            st.bytes = all[i] == moe::Strategy::NoPack ? 0.0 : double(s.tokens) * row + double(one.rows) * row;
            r.strategies.push_back(st);
        }
        r.copy_gbps = copy_gbps(r.backend, std::size_t(r.strategies.front().bytes));
        r.copy_provenance = meas;
        if (r.backend == "cpu") r.add(Result::Caveat::NoisyStrategies);
        if (r.backend == "cpu")
            r.notes.push_back(
                "On the CPU reference every strategy runs the same plain plan and pack, so their times "
                "differ only by noise; the strategies differ on the GPU.");
    }

    PipelineInput pin = pipeline_input(s);
    r.pipeline = simulate_pipeline(pin, &r.model_timeline);
    if (demo == Demo::Pipeline && r.backend == "cuda" && ctl.measure_pipeline) {
        // The ping-pong schedule for real: attention and expert pools on the GPU, every span measured, and the
        // model re-run with constants fitted on this GPU.
        run_measured_pipeline(s, r, [&](float f, const std::string& what) {
            if (ctl.progress) ctl.progress(0.5f + 0.5f * f, what);
            if (ctl.cancel && ctl.cancel->load()) throw moe::Error(moe::ErrorKind::Runtime, "run cancelled");
        });
    } else if (demo == Demo::Pipeline) {
        r.add(Result::Caveat::ModeledPipeline);
        r.notes.push_back(r.backend == "cuda"
                              ? "The pipeline timeline here is modelled (MegaScale-Infer's ping-pong schedule); the "
                                "measured run on GPU pools follows."
                              : "The pipeline timeline is modelled (MegaScale-Infer's ping-pong schedule), not "
                                "measured: measuring it needs the cuda backend.");
    }
    if (ctl.progress) ctl.progress(1.0f, "done");
    return r;
}

}  // namespace demos
