// Model summaries (see summary.h). The recorder is a thread-local stack: call() pushes the module
// on entry (so the table comes out in pre-order, parents before children) and fills in the output
// shape on exit; a Conv2d's or Linear's multiply-accumulates are added to it and to every module
// still open on the stack, which gives containers the sum of their children.
#include "models/summary.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace halo::models {

namespace {
struct Recorder {
  struct Entry {
    nn::Module* module;
    Shape output_shape;
    int64_t macs = 0;
    double ms = 0;
  };
  std::vector<Entry> entries;
  std::vector<std::size_t> open;  // indices into entries of the modules currently running
};
thread_local Recorder* g_recorder = nullptr;

// Multiply-accumulates per image of one call of a leaf layer producing `y`.
int64_t leaf_macs(const nn::Module& m, const Tensor& y) {
  if (auto* conv = dynamic_cast<const nn::Conv2d*>(&m)) {
    // C_out * H_out * W_out outputs, each a dot product of (C_in / groups) * k * k terms.
    const int64_t per_image = y.numel() / y.size(0);
    return per_image * (conv->in / conv->groups) * conv->kernel * conv->kernel;
  }
  if (auto* lin = dynamic_cast<const nn::Linear*>(&m)) {
    const int64_t rows_per_image = y.numel() / y.size(0) / lin->out;
    return rows_per_image * int64_t(lin->in) * lin->out;
  }
  return 0;
}

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v < 0 ? -v : v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3)
    s.insert(static_cast<std::size_t>(i), ",");
  return v < 0 ? "-" + s : s;
}
}  // namespace

Tensor call(nn::Module& m, const Tensor& x) {
  Recorder* rec = g_recorder;
  if (!rec) return m.forward(x);
  const std::size_t idx = rec->entries.size();
  rec->entries.push_back({&m, {}, 0});
  rec->open.push_back(idx);
  struct Pop {
    Recorder* r;
    ~Pop() { r->open.pop_back(); }
  } pop{rec};
  const auto t0 = std::chrono::steady_clock::now();
  Tensor y = m.forward(x);
  rec->entries[idx].ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  rec->entries[idx].output_shape = y.shape();
  if (const int64_t macs = leaf_macs(m, y))
    for (std::size_t i : rec->open) rec->entries[i].macs += macs;
  return y;
}

namespace {
std::atomic<bool> g_fused_ops{true};
}  // namespace
void set_fused_ops(bool on) {
  g_fused_ops = on;
}
bool fused_ops() {
  return g_fused_ops;
}

Tensor call_bn_add_relu(nn::BatchNorm2d& bn, nn::ReLU& act, const Tensor& x,
                        const Tensor& residual) {
  if (!fused_ops()) {
    Tensor y = call(bn, x);
    if (residual.defined()) y = add(y, residual);
    return call(act, y);
  }
  Recorder* rec = g_recorder;
  if (!rec) return bn.forward_add_relu(x, residual);
  const auto t0 = std::chrono::steady_clock::now();
  Tensor y = bn.forward_add_relu(x, residual);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  rec->entries.push_back({&bn, y.shape(), 0, ms});
  rec->entries.push_back({&act, y.shape(), 0, 0.0});
  return y;
}

TracedSequential::TracedSequential(std::vector<nn::ModulePtr> modules) {
  for (auto& m : modules) push_back(std::move(m));
}
void TracedSequential::push_back(nn::ModulePtr m) {
  register_module(std::to_string(size()), std::move(m));
}
Tensor TracedSequential::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& [name, m] : named_children()) h = call(*m, h);
  return h;
}

void visit_modules(nn::Module& root,
                   const std::function<void(const std::string&, nn::Module&)>& fn) {
  std::function<void(const std::string&, nn::Module&)> walk = [&](const std::string& name,
                                                                  nn::Module& m) {
    fn(name, m);
    for (auto& [child_name, child] : m.named_children())
      walk(name.empty() ? child_name : name + "." + child_name, *child);
  };
  walk("", root);
}

ModelSummary summarize(nn::Module& model, const std::string& name, int size, int in_chans) {
  if (size < 1 || in_chans < 1)
    throw std::invalid_argument("summarize: input size and channels must be positive, got " +
                                std::to_string(in_chans) + "x" + std::to_string(size) + "x" +
                                std::to_string(size));
  std::map<const nn::Module*, std::string> names;
  visit_modules(model, [&](const std::string& n, nn::Module& m) { names.emplace(&m, n); });

  ModelSummary s;
  s.model = name;
  s.input_shape = {1, in_chans, size, size};
  for (auto& [k, t] : model.named_parameters()) {
    s.params += t.numel();
    ++s.param_tensors;
  }
  for (auto& [k, t] : model.named_buffers()) {
    s.buffer_elements += t.numel();
    ++s.buffer_tensors;
  }

  const bool was_training = model.is_training();
  model.eval();
  Recorder rec;
  Tensor y;
  {
    NoGradGuard no_grad;
    g_recorder = &rec;
    try {
      const auto params = model.named_parameters();  // the input goes where the weights are
      y = model.forward(Tensor::zeros(
          s.input_shape, params.empty() ? Device::cpu : params.front().second.device()));
    } catch (...) {
      g_recorder = nullptr;
      model.train(was_training);
      throw;
    }
    g_recorder = nullptr;
  }
  model.train(was_training);
  s.output_shape = y.shape();

  for (const auto& e : rec.entries) {
    LayerInfo li;
    auto it = names.find(e.module);
    li.name = it != names.end() ? it->second : "?";
    li.type = e.module->type_name();
    li.describe = e.module->describe();
    li.depth = 1;
    for (char c : li.name) li.depth += c == '.';
    li.output_shape = e.output_shape;
    li.params = e.module->num_parameters();
    li.macs = e.macs;
    if (li.depth == 1) s.macs += li.macs;  // top-level entries partition the model's layers
    s.layers.push_back(std::move(li));
  }
  return s;
}

std::vector<LayerInfo> profile_forward(nn::Module& model, const Tensor& x, int repeats,
                                       bool with_grad) {
  std::map<const nn::Module*, std::string> names;
  visit_modules(model, [&](const std::string& n, nn::Module& m) { names.emplace(&m, n); });
  auto run = [&] {
    if (with_grad) return model.forward(x);
    NoGradGuard no_grad;
    return model.forward(x);
  };
  run();  // warm-up: the allocator's cache, first-touch of pages
  std::vector<LayerInfo> layers;
  std::map<const nn::Module*, std::size_t> index;
  for (int r = 0; r < repeats; ++r) {
    Recorder rec;
    g_recorder = &rec;
    try {
      run();
    } catch (...) {
      g_recorder = nullptr;
      throw;
    }
    g_recorder = nullptr;
    for (const auto& e : rec.entries) {
      auto [it, fresh] = index.emplace(e.module, layers.size());
      if (fresh) {
        LayerInfo li;
        auto n = names.find(e.module);
        li.name = n != names.end() ? n->second : "?";
        li.type = e.module->type_name();
        li.describe = e.module->describe();
        li.depth = 1;
        for (char c : li.name) li.depth += c == '.';
        li.output_shape = e.output_shape;
        li.params = e.module->num_parameters();
        li.macs = e.macs;
        layers.push_back(std::move(li));
      }
      layers[it->second].ms += e.ms / repeats;
    }
  }
  return layers;
}

std::string ModelSummary::to_text() const {
  std::ostringstream out;
  char line[512];
  std::snprintf(line, sizeof line, "%s, input %s\n", model.c_str(), to_string(input_shape).c_str());
  out << line;
  std::snprintf(line, sizeof line, "%-44s %-22s %-20s %12s %16s  %s\n", "layer", "type", "output",
                "params", "MACs/image", "settings");
  out << line << std::string(140, '-') << "\n";
  for (const auto& l : layers) {
    const std::string indented = std::string(2 * (l.depth - 1), ' ') + l.name;
    std::snprintf(line, sizeof line, "%-44s %-22s %-20s %12s %16s  %s\n", indented.c_str(),
                  l.type.c_str(), to_string(l.output_shape).c_str(), with_commas(l.params).c_str(),
                  with_commas(l.macs).c_str(), l.describe.c_str());
    out << line;
  }
  out << std::string(140, '-') << "\n";
  out << "output " << to_string(output_shape) << "\n";
  out << "parameters " << with_commas(params) << " in " << param_tensors << " tensors; buffers "
      << with_commas(buffer_elements) << " elements in " << buffer_tensors << " tensors\n";
  std::snprintf(line, sizeof line, "MACs per image %s (%.3f G)\n", with_commas(macs).c_str(),
                static_cast<double>(macs) / 1e9);
  out << line;
  return out.str();
}

nlohmann::json ModelSummary::to_json() const {
  nlohmann::json j;
  j["model"] = model;
  j["input_shape"] = input_shape;
  j["output_shape"] = output_shape;
  j["parameters"] = params;
  j["parameter_tensors"] = param_tensors;
  j["buffer_tensors"] = buffer_tensors;
  j["buffer_elements"] = buffer_elements;
  j["macs_per_image"] = macs;
  nlohmann::json ls = nlohmann::json::array();
  for (const auto& l : layers)
    ls.push_back({{"name", l.name},
                  {"type", l.type},
                  {"settings", l.describe},
                  {"depth", l.depth},
                  {"output_shape", l.output_shape},
                  {"parameters", l.params},
                  {"macs_per_image", l.macs}});
  j["layers"] = std::move(ls);
  return j;
}

void write_summary_json(const ModelSummary& summary, const std::string& path) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    if (!f) throw std::runtime_error(path + ": cannot create '" + tmp + "' (missing folder?)");
    f << summary.to_json().dump(2) << "\n";
    if (!f.flush()) throw std::runtime_error(path + ": write failed (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw std::runtime_error(path + ": cannot rename '" + tmp + "': " + ec.message());
}

}  // namespace halo::models
