// Runs a whole test binary on one instruction-set variant of the CPU kernels
// (kernels/cpu/isa.h) when HALO_TEST_CPU_ISA names one. tests/CMakeLists.txt registers the kernel
// and model tests once more per variant with it set, so every variant this CPU supports is checked
// against the references and the PyTorch fixtures, not only the fastest. Where the CPU lacks the
// variant, every test of that run is skipped and says why.
#include <gtest/gtest.h>

#include <cstdlib>

#include "kernels/cpu/isa.h"

namespace {

class CpuIsaEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* name = std::getenv("HALO_TEST_CPU_ISA");
    if (!name || !*name) return;
    namespace cpu = halo::kernels::cpu;
    const cpu::Isa v = cpu::parse_isa(name);
    if (!cpu::isa_supported(v))
      GTEST_SKIP() << "this CPU lacks the " << name << " instruction set (the best it has is "
                   << cpu::isa_name(cpu::best_isa()) << ")";
    cpu::set_isa(v);
  }
};

const auto* const registered = ::testing::AddGlobalTestEnvironment(new CpuIsaEnvironment);

}  // namespace
