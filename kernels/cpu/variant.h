// Included first by every fast CPU kernel source (kernels/cpu/*.cpp but the reference loops, the
// dispatcher and isa.cpp). Each such file is compiled three times, with -DHALO_CPU_VARIANT=sse2,
// avx2 or avx512 and that instruction set's flags (kernels/CMakeLists.txt), so its definitions
// land in halo::kernels::cpu::sse2, ::avx2 and ::avx512. The public halo::kernels::cpu functions
// are in dispatch.cpp and call the variant that isa() names.
#pragma once

#ifndef HALO_CPU_VARIANT
#error "kernels/cpu kernels are compiled once per instruction set with -DHALO_CPU_VARIANT=<isa> (kernels/CMakeLists.txt)"
#endif
