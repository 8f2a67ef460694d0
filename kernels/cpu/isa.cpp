// Chooses the CPU kernels' instruction-set variant (kernels/cpu/isa.h). Compiled for the baseline
// instruction set: it runs before anything wider may.
#include "kernels/cpu/isa.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace halo::kernels::cpu {
namespace {

bool cpu_has(Isa v) {
#if defined(__x86_64__) || defined(_M_X64)
  // libgcc's __builtin_cpu_supports also checks that the OS saves the wide registers (XGETBV).
  switch (v) {
    case Isa::sse2:
      return true;  // part of x86-64
    case Isa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::avx512:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl");
  }
  return false;
#else
  return v == Isa::sse2;  // other architectures: the three variants are the same portable code
#endif
}

Isa initial_isa() {
  const char* env = std::getenv("HALO_CPU_ISA");
  if (!env || !*env) return best_isa();
  Isa v;
  try {
    v = parse_isa(env);
  } catch (const std::invalid_argument&) {
    throw std::invalid_argument(std::string("HALO_CPU_ISA=") + env +
                                ": expected sse2, avx2 or avx512");
  }
  if (!isa_supported(v))
    throw std::invalid_argument(std::string("HALO_CPU_ISA=") + env +
                                ": this CPU does not support it (the best it has is " +
                                isa_name(best_isa()) + ")");
  return v;
}

// -1 until the first isa() call.
std::atomic<int> g_isa{-1};

}  // namespace

bool isa_supported(Isa v) {
  static const bool has[3] = {cpu_has(Isa::sse2), cpu_has(Isa::avx2), cpu_has(Isa::avx512)};
  return has[int(v)];
}

Isa best_isa() {
  if (isa_supported(Isa::avx512)) return Isa::avx512;
  if (isa_supported(Isa::avx2)) return Isa::avx2;
  return Isa::sse2;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa v : {Isa::sse2, Isa::avx2, Isa::avx512})
    if (isa_supported(v)) out.push_back(v);
  return out;
}

Isa isa() {
  int v = g_isa.load(std::memory_order_relaxed);
  if (v < 0) {
    // Racing first calls compute the same answer; a bad HALO_CPU_ISA throws on every call.
    v = int(initial_isa());
    g_isa.store(v, std::memory_order_relaxed);
  }
  return Isa(v);
}

void set_isa(Isa v) {
  if (!isa_supported(v))
    throw std::invalid_argument(std::string("kernels::cpu::set_isa(") + isa_name(v) +
                                "): this CPU does not support it (the best it has is " +
                                isa_name(best_isa()) + ")");
  g_isa.store(int(v), std::memory_order_relaxed);
}

const char* isa_name(Isa v) {
  switch (v) {
    case Isa::sse2:
      return "sse2";
    case Isa::avx2:
      return "avx2";
    case Isa::avx512:
      return "avx512";
  }
  return "?";
}

Isa parse_isa(const std::string& name) {
  for (Isa v : {Isa::sse2, Isa::avx2, Isa::avx512})
    if (name == isa_name(v)) return v;
  throw std::invalid_argument("CPU instruction set '" + name + "': expected sse2, avx2 or avx512");
}

}  // namespace halo::kernels::cpu
