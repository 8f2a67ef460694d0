// How the emulated CUDA device executes a kernel launch on the CPU.
//
// The grid's blocks are a loop, spread over OpenMP threads (one block per OS thread at a time, so
// blocks never interleave). Inside a block every GPU thread is a fiber (Boost.Context) with its own
// small stack, all on the OS thread that runs the block. The block's scheduler resumes the threads
// one after another, in the chosen order (forward, reverse or a seeded shuffle); a thread runs
// until it finishes or waits:
//   * at __syncthreads(): it is released when every thread of the block waits at the same barrier;
//     a thread that has finished, or waits at another barrier or in a warp exchange while others
//     wait at a barrier, is barrier divergence, reported as a launch failure naming the kernel, the
//     block and the threads;
//   * in a warp exchange (__shfl_*_sync, __syncwarp): it is released when every lane of its mask
//     has arrived at the same call; a mask naming lanes the warp does not have (a partial warp) or
//     lanes that have finished is reported the same way.
// HALO_SHARED storage is allocated per block when the first thread reaches the declaration,
// filled with 0xFF bytes (NaN as float), and freed when the block ends: a read before any write
// gives NaN, and in a sanitizer build an access past the declared size is caught.
//
// Nothing here models timing, the memory model (all memory is coherent at once), or TF32.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/context/fiber.hpp>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda_emulator/emulator.h"
#include "kernels/cuda_emulator/internal.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define HALO_EMU_ASAN 1
#else
#define HALO_EMU_ASAN 0
#endif

namespace halo::cuda_emulator {

__thread const ThreadCoords* t_coords = nullptr;

namespace ctx = boost::context;

namespace {

// ---- settings ---------------------------------------------------------------------------------

struct Settings {
  std::atomic<int> order{int(ThreadOrder::forward)};
  std::atomic<std::uint64_t> seed{1};
  std::atomic<int> threads{0};  // 0: OpenMP's default
  int sms = 4;
  Settings() {
    if (const char* o = std::getenv("HALO_EMU_THREAD_ORDER")) {
      const std::string s = o;
      if (s == "reverse") {
        order = int(ThreadOrder::reverse);
      } else if (s.rfind("shuffle", 0) == 0) {
        order = int(ThreadOrder::shuffled);
        if (s.size() > 8 && s[7] == ':') seed = std::strtoull(s.c_str() + 8, nullptr, 10);
      } else if (s != "forward" && !s.empty()) {
        throw std::invalid_argument(
            "HALO_EMU_THREAD_ORDER must be forward, reverse or "
            "shuffle[:seed], got '" +
            s + "'");
      }
    }
    if (const char* t = std::getenv("HALO_EMU_THREADS")) threads = std::max(1, std::atoi(t));
    if (const char* m = std::getenv("HALO_EMU_SMS")) sms = std::max(1, std::atoi(m));
  }
};
Settings& settings() {
  static Settings s;
  return s;
}

struct Counters {
  std::atomic<std::uint64_t> launches{0}, blocks{0}, threads{0}, barriers{0}, warp_exchanges{0};
};
Counters& counters() {
  static Counters c;
  return c;
}

// ---- fiber stacks -----------------------------------------------------------------------------

// One mapping per OS thread holding one stack per GPU thread of the largest block seen, each with
// an inaccessible guard page below it, so a kernel that overflows its stack faults at once.
#if HALO_EMU_ASAN
constexpr std::size_t kStackBytes = 256 * 1024;  // ASan's redzones make frames larger
#else
constexpr std::size_t kStackBytes = 64 * 1024;
#endif

class StackPool {
 public:
  ~StackPool() {
    if (base_) munmap(base_, slot_ * count_);
  }
  // The stack of GPU thread i (the pool grows to `n` stacks first).
  void reserve(int n) {
    if (n <= count_) return;
    if (base_) munmap(base_, slot_ * count_);
    page_ = std::size_t(sysconf(_SC_PAGESIZE));
    slot_ = kStackBytes + page_;
    void* p = mmap(nullptr, slot_ * std::size_t(n), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    base_ = static_cast<char*>(p);
    count_ = n;
    for (int i = 0; i < n; ++i) mprotect(base_ + slot_ * std::size_t(i), page_, PROT_NONE);
  }
  char* bottom(int i) const { return base_ + slot_ * std::size_t(i) + page_; }
  static constexpr std::size_t size() { return kStackBytes; }

 private:
  char* base_ = nullptr;
  std::size_t slot_ = 0, page_ = 4096;
  int count_ = 0;
};

// Boost.Context's stack-allocator concept over one preallocated stack of the pool.
struct PoolStack {
  char* bottom;
  ctx::stack_context allocate() {
    ctx::stack_context sc;
    sc.size = StackPool::size();
    sc.sp = bottom + StackPool::size();
    return sc;
  }
  void deallocate(ctx::stack_context&) noexcept {}
};

// A fiber handle that can be dropped without unwinding: when a block is abandoned after an error,
// its suspended threads are simply forgotten (their stacks belong to the pool).
class FiberSlot {
 public:
  ctx::fiber& get() { return *std::launder(reinterpret_cast<ctx::fiber*>(raw_)); }
  void set(ctx::fiber&& f) {
    if (live_)
      get() = std::move(f);
    else
      new (raw_) ctx::fiber(std::move(f));
    live_ = true;
  }
  void forget() { live_ = false; }

 private:
  alignas(ctx::fiber) unsigned char raw_[sizeof(ctx::fiber)];
  bool live_ = false;
};

// ---- one block --------------------------------------------------------------------------------

enum class State { not_started, ready, barrier, warp, done };

struct GpuThread {
  ThreadCoords coords;
  int linear = 0, warp = 0, lane = 0;
  State state = State::not_started;
  const void* site = nullptr;  // the barrier or exchange it waits at
  FiberSlot fiber;
  // warp exchange
  unsigned mask = 0;
  std::uint64_t bits = 0, result = 0;
  ShuffleMode mode = ShuffleMode::sync_only;
  int arg = 0, width = 32;
#if HALO_EMU_ASAN
  void* fake_stack = nullptr;
#endif
};

struct SharedBlock {
  const void* site;
  void* ptr;
};

struct BlockRun {
  const LaunchInfo* launch = nullptr;
  uint3 block{};
  int n = 0;
  std::vector<GpuThread> threads;
  std::vector<int> order;
  std::vector<SharedBlock> shared;
  GpuThread* current = nullptr;
  FiberSlot scheduler;  // the scheduler's context while a GPU thread runs
  std::string error;
  StackPool stacks;
  bool stacks_dirty = false;  // a fiber was abandoned: its stack's ASan shadow may be stale
#if HALO_EMU_ASAN
  const void* main_bottom = nullptr;
  std::size_t main_size = 0;
  void* main_fake_stack = nullptr;
#endif
  std::uint64_t barriers = 0, exchanges = 0;
};

thread_local BlockRun* t_block = nullptr;

std::string coords(uint3 v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}

[[noreturn]] void fail_in_kernel(const std::string& what) {
  throw std::logic_error(what);
}

// Switches from the running GPU thread back to the scheduler; returns when the scheduler resumes
// it.
void yield_to_scheduler() {
  BlockRun* b = t_block;
  GpuThread* t = b->current;
#if HALO_EMU_ASAN
  __sanitizer_start_switch_fiber(&t->fake_stack, b->main_bottom, b->main_size);
#endif
  b->scheduler.set(std::move(b->scheduler.get()).resume());
#if HALO_EMU_ASAN
  __sanitizer_finish_switch_fiber(t->fake_stack, &b->main_bottom, &b->main_size);
#endif
  (void)t;
}

void resume(BlockRun& b, GpuThread& t) {
  b.current = &t;
  t_coords = &t.coords;
  char* bottom = b.stacks.bottom(t.linear);
  if (t.state == State::not_started) {
    if (b.stacks_dirty) {
#if HALO_EMU_ASAN
      __asan_unpoison_memory_region(bottom, StackPool::size());
#endif
    }
    t.fiber.set(ctx::fiber(std::allocator_arg, PoolStack{bottom}, [&b, &t](ctx::fiber&& sched) {
#if HALO_EMU_ASAN
      __sanitizer_finish_switch_fiber(nullptr, &b.main_bottom, &b.main_size);
#endif
      b.scheduler.set(std::move(sched));
      try {
        b.launch->body();
      } catch (const std::exception& e) {
        if (b.error.empty()) b.error = e.what();
      } catch (...) {
        if (b.error.empty()) b.error = "unknown exception in a kernel";
      }
      t.state = State::done;
#if HALO_EMU_ASAN
      __sanitizer_start_switch_fiber(nullptr, b.main_bottom, b.main_size);
#endif
      return std::move(b.scheduler.get());
    }));
  }
  t.state = State::ready;
#if HALO_EMU_ASAN
  __sanitizer_start_switch_fiber(&b.main_fake_stack, bottom, StackPool::size());
#endif
  t.fiber.set(std::move(t.fiber.get()).resume());
#if HALO_EMU_ASAN
  __sanitizer_finish_switch_fiber(b.main_fake_stack, nullptr, nullptr);
#endif
  t_coords = nullptr;
  b.current = nullptr;
}

std::string where(const BlockRun& b) {
  return "kernel " + b.launch->name + " (launched at " + b.launch->site + ") block " +
         coords(b.block);
}

// A short list of thread indices, "3, 7, 8 and 250 more".
std::string list_threads(const std::vector<int>& ids) {
  std::string s;
  for (std::size_t i = 0; i < ids.size() && i < 4; ++i)
    s += (i ? ", " : "") + std::to_string(ids[i]);
  if (ids.size() > 4) s += " and " + std::to_string(ids.size() - 4) + " more";
  return s;
}

int source_lane(const GpuThread& t) {
  const int w = t.width, l = t.lane, base = l - l % w, local = l % w;
  switch (t.mode) {
    case ShuffleMode::xor_lane: {
      const int s = l ^ t.arg;
      return s >= base + w ? l : s;
    }
    case ShuffleMode::down:
      return local + t.arg < w ? l + t.arg : l;
    case ShuffleMode::up:
      return local >= t.arg ? l - t.arg : l;
    case ShuffleMode::index:
      return base + ((t.arg % w) + w) % w;
    case ShuffleMode::sync_only:
      return l;
  }
  return l;
}

// Completes the warp exchanges whose lanes have all arrived; returns true if any did. Sets
// b.error on a malformed exchange.
bool complete_warp_exchanges(BlockRun& b) {
  bool released = false;
  const int warps = (b.n + 31) / 32;
  for (int w = 0; w < warps; ++w) {
    const int first = w * 32, lanes = std::min(32, b.n - first);
    for (int l = 0; l < lanes; ++l) {
      GpuThread& t = b.threads[first + l];
      if (t.state != State::warp) continue;
      const unsigned mask = t.mask;
      if (!(mask >> l & 1u)) {
        b.error = "warp exchange error in " + where(b) + ": thread " + std::to_string(t.linear) +
                  " calls a *_sync warp function with a mask that does not include its own lane";
        return false;
      }
      if (lanes < 32 && (mask >> lanes) != 0) {
        b.error = "warp exchange in a partial warp in " + where(b) + ": warp " + std::to_string(w) +
                  " has " + std::to_string(lanes) + " threads but the mask is 0x" +
                  [&] {
                    char buf[16];
                    std::snprintf(buf, sizeof buf, "%08x", mask);
                    return std::string(buf);
                  }() +
                  " (blockDim is not a multiple of 32)";
        return false;
      }
      bool all = true;
      for (int k = 0; k < lanes; ++k) {
        if (!(mask >> k & 1u)) continue;
        const GpuThread& o = b.threads[first + k];
        if (o.state == State::done) {
          b.error = "warp exchange error in " + where(b) + ": lane " + std::to_string(k) +
                    " of warp " + std::to_string(w) + " has finished while lane " +
                    std::to_string(l) + " waits for it in a *_sync warp function";
          return false;
        }
        if (o.state != State::warp || o.mask != mask) {
          all = false;
          break;
        }
        if (o.site != t.site) {
          b.error = "warp divergence in " + where(b) + ": lanes of warp " + std::to_string(w) +
                    " wait at different warp exchanges with the same mask";
          return false;
        }
      }
      if (!all) continue;
      for (int k = 0; k < lanes; ++k) {
        if (!(mask >> k & 1u)) continue;
        GpuThread& o = b.threads[first + k];
        const int src = source_lane(o);
        if (src < 0 || src >= lanes || !(mask >> src & 1u)) {
          b.error = "warp exchange error in " + where(b) + ": lane " + std::to_string(k) +
                    " of warp " + std::to_string(w) + " reads lane " + std::to_string(src) +
                    ", which is not in the mask";
          return false;
        }
        o.result = b.threads[first + src].bits;
      }
      for (int k = 0; k < lanes; ++k)
        if (mask >> k & 1u) b.threads[first + k].state = State::ready;
      ++b.exchanges;
      released = true;
    }
  }
  return released;
}

// Runs one block to completion; on a fault leaves the message in b.error.
void run_block(BlockRun& b) {
  const LaunchInfo& L = *b.launch;
  const unsigned bx = L.block.x, by = L.block.y;
  b.n = int(L.block.x * L.block.y * L.block.z);
  b.threads.clear();
  b.threads.resize(std::size_t(b.n));
  b.stacks.reserve(b.n);
  for (int i = 0; i < b.n; ++i) {
    GpuThread& t = b.threads[std::size_t(i)];
    t.coords.thread_idx = uint3{unsigned(i) % bx, (unsigned(i) / bx) % by, unsigned(i) / (bx * by)};
    t.coords.block_idx = b.block;
    t.coords.block_dim = L.block;
    t.coords.grid_dim = L.grid;
    t.linear = i;
    t.warp = i / 32;
    t.lane = i % 32;
  }
  b.order.resize(std::size_t(b.n));
  for (int i = 0; i < b.n; ++i) b.order[std::size_t(i)] = i;
  const auto order = ThreadOrder(settings().order.load());
  if (order == ThreadOrder::reverse) {
    std::reverse(b.order.begin(), b.order.end());
  } else if (order == ThreadOrder::shuffled) {
    const std::uint64_t linear_block =
        (std::uint64_t(b.block.z) * L.grid.y + b.block.y) * L.grid.x + b.block.x;
    std::mt19937_64 gen(settings().seed.load() * 0x9E3779B97F4A7C15ull + linear_block);
    std::shuffle(b.order.begin(), b.order.end(), gen);
  }

  for (;;) {
    for (int i : b.order) {
      GpuThread& t = b.threads[std::size_t(i)];
      if (t.state == State::not_started || t.state == State::ready) resume(b, t);
      if (!b.error.empty()) return;
    }
    // Every thread now has finished, or waits at a barrier or in a warp exchange.
    int done = 0, at_barrier = 0;
    for (const GpuThread& t : b.threads) {
      done += t.state == State::done;
      at_barrier += t.state == State::barrier;
    }
    if (done == b.n) return;
    if (complete_warp_exchanges(b)) continue;
    if (!b.error.empty()) return;
    if (at_barrier == b.n) {
      const void* site = b.threads[0].site;
      std::vector<int> other;
      for (const GpuThread& t : b.threads)
        if (t.site != site) other.push_back(t.linear);
      if (!other.empty()) {
        b.error = "barrier divergence in " + where(b) + ": threads " + list_threads(other) +
                  " wait at a different __syncthreads() than thread 0";
        return;
      }
      for (GpuThread& t : b.threads) t.state = State::ready;
      ++b.barriers;
      continue;
    }
    // Nobody can move on: describe who waits where.
    std::vector<int> finished, barrier, warp;
    for (const GpuThread& t : b.threads) {
      if (t.state == State::done) finished.push_back(t.linear);
      if (t.state == State::barrier) barrier.push_back(t.linear);
      if (t.state == State::warp) warp.push_back(t.linear);
    }
    std::string msg = "barrier divergence in " + where(b) + ": ";
    if (!barrier.empty()) msg += "threads " + list_threads(barrier) + " wait at __syncthreads()";
    if (!finished.empty())
      msg += std::string(barrier.empty() ? "" : " while threads ") + list_threads(finished) +
             " have finished";
    if (!warp.empty())
      msg += std::string(barrier.empty() && finished.empty() ? "threads " : "; threads ") +
             list_threads(warp) + " wait in a warp exchange that cannot complete";
    b.error = msg;
    return;
  }
}

void abandon_block(BlockRun& b) {
  for (GpuThread& t : b.threads) t.fiber.forget();
  b.scheduler.forget();
  b.stacks_dirty = true;
}

void free_shared(BlockRun& b) {
  for (SharedBlock& s : b.shared) std::free(s.ptr);
  b.shared.clear();
}

BlockRun& block_run() {
  thread_local std::unique_ptr<BlockRun> run = std::make_unique<BlockRun>();
  return *run;
}

}  // namespace

// ---- device-side entry points -----------------------------------------------------------------

__attribute__((noinline)) void syncthreads() {
  BlockRun* b = t_block;
  if (!b || !b->current) fail_in_kernel("__syncthreads() called outside a kernel");
  GpuThread* t = b->current;
  t->site = __builtin_return_address(0);
  t->state = State::barrier;
  yield_to_scheduler();
}

__attribute__((noinline)) std::uint64_t warp_exchange(unsigned mask, std::uint64_t bits,
                                                      ShuffleMode mode, int arg, int width) {
  BlockRun* b = t_block;
  if (!b || !b->current) fail_in_kernel("a warp function was called outside a kernel");
  if (width < 1 || width > 32 || (width & (width - 1)) != 0)
    fail_in_kernel("warp function width must be a power of two in [1, 32], got " +
                   std::to_string(width));
  GpuThread* t = b->current;
  t->site = __builtin_return_address(0);
  t->mask = mask;
  t->bits = bits;
  t->mode = mode;
  t->arg = arg;
  t->width = width;
  t->state = State::warp;
  yield_to_scheduler();
  return t->result;
}

void* block_shared(const void* site, std::size_t bytes, std::size_t align) {
  BlockRun* b = t_block;
  if (!b) fail_in_kernel("HALO_SHARED storage declared outside a kernel");
  for (const SharedBlock& s : b->shared)
    if (s.site == site) return s.ptr;
  void* p = nullptr;
  if (posix_memalign(&p, std::max<std::size_t>(align, sizeof(void*)), bytes ? bytes : 1) != 0)
    throw std::bad_alloc();
  std::memset(p, 0xFF, bytes);
  b->shared.push_back({site, p});
  return p;
}

// ---- a whole launch ---------------------------------------------------------------------------

std::string execute_launch(const LaunchInfo& L) {
  const long long blocks = 1LL * L.grid.x * L.grid.y * L.grid.z;
  std::string first_error;
  std::mutex error_mutex;
  std::atomic<bool> failed{false};
  std::atomic<std::uint64_t> barriers{0}, exchanges{0};
  auto one = [&](long long i) {
    if (failed.load(std::memory_order_relaxed)) return;
    BlockRun& b = block_run();
    b.launch = &L;
    b.block = uint3{unsigned(i % L.grid.x), unsigned(i / L.grid.x % L.grid.y),
                    unsigned(i / (1LL * L.grid.x * L.grid.y))};
    b.error.clear();
    b.barriers = b.exchanges = 0;
    BlockRun* saved = t_block;
    t_block = &b;
    run_block(b);
    t_block = saved;
    free_shared(b);
    barriers += b.barriers;
    exchanges += b.exchanges;
    if (!b.error.empty()) {
      abandon_block(b);
      failed = true;
      std::lock_guard<std::mutex> lock(error_mutex);
      if (first_error.empty()) first_error = b.error;
    }
    b.threads.clear();
  };
  const int threads = block_threads();
  if (threads <= 1 || blocks == 1) {
    for (long long i = 0; i < blocks; ++i) one(i);
  } else {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (long long i = 0; i < blocks; ++i) one(i);
  }
  Counters& c = counters();
  c.launches++;
  c.blocks += std::uint64_t(blocks);
  c.threads += std::uint64_t(blocks) * L.block.x * L.block.y * L.block.z;
  c.barriers += barriers;
  c.warp_exchanges += exchanges;
  return first_error;
}

// ---- controls (emulator.h) --------------------------------------------------------------------

void set_thread_order(ThreadOrder order, std::uint64_t seed) {
  settings().order = int(order);
  settings().seed = seed;
}
ThreadOrder thread_order() {
  return ThreadOrder(settings().order.load());
}
std::string thread_order_name() {
  switch (thread_order()) {
    case ThreadOrder::forward:
      return "forward";
    case ThreadOrder::reverse:
      return "reverse";
    case ThreadOrder::shuffled:
      return "shuffle:" + std::to_string(settings().seed.load());
  }
  return "?";
}
void set_block_threads(int threads) {
  settings().threads = std::max(0, threads);
}
int block_threads() {
  const int t = settings().threads.load();
  return t > 0 ? t : max_block_threads();
}
int multiprocessor_count() {
  return settings().sms;
}
Stats stats() {
  Counters& c = counters();
  Stats s;
  s.launches = c.launches;
  s.blocks = c.blocks;
  s.threads = c.threads;
  s.barriers = c.barriers;
  s.warp_exchanges = c.warp_exchanges;
  return s;
}

}  // namespace halo::cuda_emulator
