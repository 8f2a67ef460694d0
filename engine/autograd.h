// Reverse-mode automatic differentiation, define-by-run. Every differentiable op that sees an input
// requiring grad records a Node holding what its backward needs; the output tensor points at that
// node (grad_fn) and the node points at the nodes (or leaf tensors) of its inputs (edges).
// backward() walks the graph from the loss in reverse topological order, calls each node once with
// the sum of the gradients flowing into it, and frees the node's saved tensors as it goes.
#pragma once
#include <memory>
#include <vector>

#include "engine/tensor.h"

namespace halo {

// Where the gradient for one input of a node goes: into another node (the input was computed),
// into a leaf's .grad (a parameter or an input with requires_grad), or nowhere.
struct Edge {
  std::shared_ptr<Node> fn;
  std::shared_ptr<TensorImpl> leaf;
  bool active() const { return fn || leaf; }
};

struct Node {
  virtual ~Node() = default;
  virtual const char* name() const = 0;
  // Gradients of the loss w.r.t. each input, given the gradient w.r.t. this node's output. The
  // result has one entry per edge (same order); an undefined Tensor means "no gradient".
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  // Drops the tensors saved for backward (called once apply() has run).
  virtual void release_saved() {}

  std::vector<Edge> next;
  bool released = false;
};

// Is autograd recording? False inside a NoGradGuard (thread-local, nestable).
bool grad_enabled();

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when grad mode is on and any of the inputs requires grad: then an op must record a node.
bool needs_grad(std::initializer_list<const Tensor*> inputs);

// Connects `node` to the inputs (one edge each, in order) and makes it `output`'s grad_fn.
void attach(Tensor& output, std::shared_ptr<Node> node, std::initializer_list<const Tensor*> inputs);

// Runs backward from `root` (a one-element tensor that requires grad). See Tensor::backward().
void run_backward(const Tensor& root);

// A view of `x` with a new shape (defined here because Tensor::reshape needs a backward node).
Tensor ops_reshape(const Tensor& x, const Shape& shape);

// Sums two gradients into a new tensor (used when a tensor feeds several ops).
Tensor add_gradients(const Tensor& a, const Tensor& b);

}  // namespace halo
