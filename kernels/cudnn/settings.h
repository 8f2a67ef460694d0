// Run-time policy of the GPU backends, includable without CUDA headers: which implementation
// each op family uses (hand-written kernels or the vendor libraries), the TF32 policy, and how
// cuDNN convolution algorithms are chosen. Implemented in settings.cpp (built only with CUDA).
//
// TF32 policy (PyTorch's defaults): convolutions may use TF32 tensor cores
// (torch.backends.cudnn.allow_tf32 = True), matrix multiplies may not
// (torch.backends.cuda.matmul.allow_tf32 = False). set_tf32(false) turns TF32 off everywhere, which
// the parity tests do so that cuDNN/cuBLAS agree with the FP32 CPU reference to 1e-5.
// The hand-written kernels never use TF32.
#pragma once
#include <cstddef>

namespace halo::kernels::cudnn {

// Which implementation an op family runs on the GPU (read by the cudnn::dispatch functions).
enum class Backend { handwritten, vendor };

// The backend every family starts with: vendor on a GPU build, handwritten on the emulated device.
Backend default_backend();
void set_conv_backend(Backend b);  // convolutions: hand-written or cuDNN (default: vendor)
Backend conv_backend();
void set_batch_norm_backend(Backend b);  // batch norm: hand-written or cuDNN (default: vendor)
Backend batch_norm_backend();
void set_gemm_backend(Backend b);  // GEMM / linear: hand-written or cuBLAS (default: vendor)
Backend gemm_backend();

void set_tf32(bool allowed);  // both switches below at once
void set_conv_tf32(bool allowed);
bool conv_tf32();
void set_matmul_tf32(bool allowed);
bool matmul_tf32();
void reset_tf32_defaults();  // conv on, matmul off (PyTorch)

// How a cuDNN convolution algorithm is chosen, once per shape and then cached:
// heuristic = cudnnGet*_v7 (no timing, no device synchronisation; PyTorch's
// cudnn.benchmark = False), benchmark = cudnnFind*Ex (times the candidates on the real buffers,
// once per shape; cudnn.benchmark = True).
enum class ConvAlgoSearch { heuristic, benchmark };
void set_conv_algo_search(ConvAlgoSearch s);
ConvAlgoSearch conv_algo_search();

// Restrict cuDNN to the convolution algorithms that sum products directly (implicit/explicit
// GEMM and the direct backward algorithms), excluding FFT and Winograd, whose FP32 rounding
// error can exceed 1e-5. Off by default; the strict parity tests turn it on.
void set_conv_exact_algorithms(bool only_exact);
bool conv_exact_algorithms();

// Largest cuDNN workspace an algorithm may use (default 256 MiB). The workspace is one reusable
// device buffer that grows to the largest size needed.
void set_workspace_limit(std::size_t bytes);
std::size_t workspace_limit();

// Forget the cached convolution plans (descriptors and the algorithm chosen per shape). Plans
// are keyed by shape *and* by the settings above, so changing a setting never reuses a plan made
// under another; this only frees memory (e.g. between benchmarks).
void clear_conv_plans();

}  // namespace halo::kernels::cudnn
