// Which instruction-set variant of the CPU kernels runs. Every fast CPU kernel is compiled three
// times (kernels/CMakeLists.txt): for SSE2 (any x86-64 CPU), AVX2 + FMA, and AVX-512
// (F, CD, BW, DQ, VL). The public halo::kernels::cpu functions (kernels/cpu/dispatch.cpp) call the
// variant chosen here, once per process: the best one the CPU supports, or a lower one named by
// the environment variable HALO_CPU_ISA (sse2 | avx2 | avx512). The reference loops
// (conv2d_*_reference) are compiled once, for the baseline.
#pragma once
#include <string>
#include <vector>

namespace halo::kernels::cpu {

enum class Isa { sse2 = 0, avx2 = 1, avx512 = 2 };

// The variant in use. The first call decides: HALO_CPU_ISA if set (std::invalid_argument if it
// names no variant or one this CPU lacks), else best_isa().
Isa isa();
// Use variant `v` from now on (tests run each supported one). Throws std::invalid_argument if
// the CPU lacks it. Not meant to be called while kernels run on other threads.
void set_isa(Isa v);

bool isa_supported(Isa v);          // the CPU (and the OS, for the wider registers) supports it
Isa best_isa();                     // the widest supported variant
std::vector<Isa> supported_isas();  // sse2 first
const char* isa_name(Isa v);        // "sse2", "avx2", "avx512"
Isa parse_isa(const std::string& name);  // inverse of isa_name; std::invalid_argument otherwise

}  // namespace halo::kernels::cpu
