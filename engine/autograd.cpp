// The autograd engine: grad mode, graph recording and the backward pass (see autograd.h).
#include "engine/autograd.h"

#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "engine/ops.h"
#include "kernels/elementwise.h"

namespace halo {

namespace {
thread_local bool g_grad_enabled = true;

Edge edge_to(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  if (t.grad_fn()) return Edge{t.grad_fn(), nullptr};
  return Edge{nullptr, t.impl_ptr()};
}

// Adds g into a leaf's .grad, allocating it on first arrival.
void accumulate_into_leaf(TensorImpl& leaf, const Tensor& g) {
  if (g.shape() != leaf.shape)
    throw std::logic_error("autograd: gradient " + g.str() + " for a leaf of shape " + to_string(leaf.shape));
  if (!leaf.grad) {
    leaf.grad = g.clone().impl_ptr();  // clone: g may be shared with other edges
  } else {
    Tensor acc(leaf.grad);
    add_(acc, g);
  }
}
}  // namespace

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

void attach(Tensor& output, std::shared_ptr<Node> node, std::initializer_list<const Tensor*> inputs) {
  node->next.clear();
  for (const Tensor* t : inputs) node->next.push_back(t ? edge_to(*t) : Edge{});
  output.impl()->requires_grad = true;
  output.impl()->grad_fn = std::move(node);
}

Tensor add_gradients(const Tensor& a, const Tensor& b) {
  Tensor out = a.clone();
  add_(out, b);
  return out;
}

void run_backward(const Tensor& root) {
  if (!root.requires_grad())
    throw std::logic_error("backward(): the tensor does not require grad (no parameter reached it, "
                           "or it was computed under NoGradGuard)");
  if (root.numel() != 1)
    throw std::logic_error("backward(): needs a scalar (one-element) tensor, got " + root.str());
  NoGradGuard no_grad;  // backward computations are not themselves recorded
  Tensor seed = Tensor::ones(root.shape(), root.device());
  if (!root.grad_fn()) {  // the root is itself a leaf
    accumulate_into_leaf(*root.impl(), seed);
    return;
  }

  // Reverse topological order by an iterative depth-first search (post-order).
  std::vector<Node*> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<Node*, std::size_t>> stack{{root.grad_fn().get(), 0}};
  seen.insert(root.grad_fn().get());
  while (!stack.empty()) {
    auto& [node, i] = stack.back();
    if (i < node->next.size()) {
      Node* child = node->next[i++].fn.get();
      if (child && seen.insert(child).second) stack.push_back({child, 0});
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }

  std::unordered_map<Node*, Tensor> grads;
  grads[root.grad_fn().get()] = seed;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = *it;
    if (node->released)
      throw std::logic_error(std::string("backward(): the graph through ") + node->name() +
                             " was already freed by an earlier backward()");
    auto found = grads.find(node);
    if (found == grads.end()) continue;  // no gradient reached this node
    Tensor g = std::move(found->second);
    grads.erase(found);
    std::vector<Tensor> input_grads = node->apply(g);
    if (input_grads.size() != node->next.size())
      throw std::logic_error(std::string("autograd: ") + node->name() + " returned " +
                             std::to_string(input_grads.size()) + " gradients for " +
                             std::to_string(node->next.size()) + " inputs");
    for (std::size_t k = 0; k < input_grads.size(); ++k) {
      const Edge& e = node->next[k];
      const Tensor& gk = input_grads[k];
      if (!gk.defined() || !e.active()) continue;
      if (e.leaf) {
        accumulate_into_leaf(*e.leaf, gk);
      } else {
        auto slot = grads.find(e.fn.get());
        if (slot == grads.end())
          grads.emplace(e.fn.get(), gk);
        else
          slot->second = add_gradients(slot->second, gk);
      }
    }
    node->release_saved();
    node->released = true;
  }
}

// ---- reshape: the one op defined beside the engine, since Tensor::reshape needs it ------------
namespace {
struct ReshapeBackward : Node {
  Shape input_shape;
  const char* name() const override { return "ReshapeBackward"; }
  std::vector<Tensor> apply(const Tensor& g) override {
    Tensor gv = g.detach();
    gv.impl()->shape = input_shape;  // contiguous: a view with the input's shape
    return {gv};
  }
};
}  // namespace

Tensor ops_reshape(const Tensor& x, const Shape& shape) {
  Shape s = shape;
  int infer = -1;
  int64_t known = 1;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (infer >= 0) throw std::invalid_argument("reshape: more than one -1 in " + to_string(shape));
      infer = static_cast<int>(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || x.numel() % known != 0)
      throw std::invalid_argument("reshape: cannot reshape " + x.str() + " to " + to_string(shape));
    s[infer] = x.numel() / known;
  }
  if (numel_of(s) != x.numel())
    throw std::invalid_argument("reshape: cannot reshape " + x.str() + " (" + std::to_string(x.numel()) +
                                " elements) to " + to_string(shape));
  Tensor y = x.detach();
  y.impl()->shape = s;
  if (needs_grad({&x})) {
    auto node = std::make_shared<ReshapeBackward>();
    node->input_shape = x.shape();
    attach(y, node, {&x});
  }
  return y;
}

}  // namespace halo
