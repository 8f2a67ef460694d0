// Tensor basics: factories, views sharing storage, copies, errors; and the caching allocator.
#include <gtest/gtest.h>

#include "engine/allocator.h"
#include "engine/tensor.h"

using namespace halo;

TEST(Tensor, FactoriesAndShape) {
  Tensor t = Tensor::full({2, 3, 4}, 1.5f);
  EXPECT_EQ(t.dim(), 3);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_EQ(t.device(), Device::cpu);
  for (float v : t.to_vector()) EXPECT_EQ(v, 1.5f);
  EXPECT_EQ(Tensor::zeros({5}).to_vector(), std::vector<float>(5, 0.f));
  EXPECT_THROW(t.size(3), std::out_of_range);
  EXPECT_THROW(Tensor::from_vector({1, 2, 3}, {2, 2}), std::invalid_argument);
  EXPECT_FALSE(Tensor().defined());
  EXPECT_THROW(Tensor().shape(), std::logic_error);
}

TEST(Tensor, ReshapeIsAViewAndFlattenCollapses) {
  Tensor t = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor v = t.reshape({3, -1});
  EXPECT_EQ(v.shape(), (Shape{3, 2}));
  EXPECT_TRUE(v.same_storage(t));
  v.data()[5] = 50.f;
  EXPECT_EQ(t.data()[5], 50.f);
  EXPECT_EQ(Tensor::zeros({2, 3, 4, 5}).flatten(1).shape(), (Shape{2, 60}));
  EXPECT_THROW(t.reshape({4, -1}), std::invalid_argument);
  EXPECT_THROW(t.reshape({-1, -1}), std::invalid_argument);
}

TEST(Tensor, CloneCopiesDetachShares) {
  Tensor t = Tensor::from_vector({1, 2}, {2});
  Tensor c = t.clone();
  c.data()[0] = 9;
  EXPECT_EQ(t.data()[0], 1);
  Tensor d = t.detach();
  EXPECT_TRUE(d.same_storage(t));
  EXPECT_FALSE(d.requires_grad());
}

TEST(Tensor, Int64Scalar) {
  Tensor t = Tensor::scalar_i64(7);
  EXPECT_EQ(t.dtype(), DType::i64);
  EXPECT_EQ(t.dim(), 0);
  EXPECT_EQ(t.data_i64()[0], 7);
  EXPECT_THROW(t.data(), std::logic_error);
  EXPECT_THROW(t.set_requires_grad(true), std::logic_error);
}

TEST(Tensor, RandomFactoriesAreReproducible) {
  std::mt19937_64 a(5), b(5);
  EXPECT_EQ(Tensor::randn({10}, a).to_vector(), Tensor::randn({10}, b).to_vector());
  std::mt19937_64 c(6);
  for (float v : Tensor::uniform({100}, c, -2, 3).to_vector()) {
    EXPECT_GE(v, -2.f);
    EXPECT_LT(v, 3.f);
  }
}

TEST(Allocator, AlignedAndReused) {
  CpuAllocator& a = CpuAllocator::instance();
  a.release_cached();
  void* p = a.allocate(1000);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % CpuAllocator::kAlignment, 0u);
  a.deallocate(p, 1000);
  const auto before = a.stats();
  void* q = a.allocate(900);  // same 1024-byte size class
  EXPECT_EQ(q, p);
  EXPECT_EQ(a.stats().system_allocs, before.system_allocs);
  EXPECT_EQ(a.stats().cache_hits, before.cache_hits + 1);
  a.deallocate(q, 900);
}

TEST(Allocator, SizeClassesBoundWaste) {
  for (std::size_t b : {1ul, 511ul, 512ul, 513ul, 100000ul, (1ul << 20) + 1, 3ul << 22, 123456789ul}) {
    const std::size_t r = CpuAllocator::round_size(b);
    EXPECT_GE(r, b);
    EXPECT_LE(r, std::max<std::size_t>(b + 512, b + b / 8 + 1)) << b;
  }
}

TEST(Allocator, SteadyStateLoopMakesNoSystemAllocations) {
  auto step = [] {
    Tensor a = Tensor::zeros({64, 64, 38, 38});
    Tensor b = Tensor::zeros({16, 128, 19, 19});
    Tensor c = a.clone();
  };
  step();
  const auto before = CpuAllocator::instance().stats();
  for (int i = 0; i < 5; ++i) step();
  EXPECT_EQ(CpuAllocator::instance().stats().system_allocs, before.system_allocs);
}
