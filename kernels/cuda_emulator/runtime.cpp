// The CUDA runtime API of the emulated device (include/cuda_runtime.h), backed by host memory.
//
// Device memory: cudaMalloc is posix_memalign of exactly the bytes asked for (so a sanitizer
// build catches a kernel reading or writing past an allocation), filled with 0xFF bytes (NaN as
// float) so that a result nobody wrote does not look plausible. Copies check that device pointers
// lie inside a live allocation.
//
// Streams are queues that run lazily: work is executed only when the host must see it (a stream,
// event or device synchronisation, a copy to pageable host memory, cudaFree). In-order streams
// allow exactly that, and it is adversarial on purpose: work on a non-blocking stream does not
// wait for earlier work on the legacy default stream (as on a GPU), and since the legacy stream's
// queue runs only when something waits for it, a missing synchronisation between the two shows up
// as a wrong result instead of passing by luck. The legacy stream waits for earlier work of
// blocking streams and they for it, as CUDA's documentation says.
//
// Graph capture records a stream's work instead of queueing it; in cudaStreamCaptureModeGlobal
// the calls CUDA forbids during a capture (synchronisation, cudaMalloc, cudaFree, synchronous
// copies, copies from pageable memory, the legacy stream) fail with
// cudaErrorStreamCaptureUnsupported / Implicit and invalidate the capture, as on a GPU.
//
// A kernel fault (barrier divergence, a bad warp exchange) is returned by the call that made the
// kernel run and by the next cudaGetLastError(); cudaGetErrorString then gives the fault's message
// (kernel, block, threads). Unlike a GPU the device stays usable afterwards.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/cuda_emulator/emulator.h"
#include "kernels/cuda_emulator/internal.h"

struct CUgraph_st {
  std::vector<std::function<void()>> ops;
  std::vector<std::string> names;
};
struct CUgraphExec_st {
  std::vector<std::function<void()>> ops;
  std::vector<std::string> names;
};

struct CUstream_st {
  int id = 0;
  bool legacy = false, non_blocking = false;
  struct Op {
    std::uint64_t seq;
    std::function<void()> run;
    std::string name;
  };
  std::deque<Op> queue;
  // capture
  CUgraph_st* capture = nullptr;
  cudaStreamCaptureMode capture_mode = cudaStreamCaptureModeGlobal;
  bool capture_invalid = false;
};

struct CUevent_st {
  CUstream_st* stream = nullptr;
  std::uint64_t seq = 0;  // complete once stream has executed every op with seq <= this
  bool recorded = false, timing = true, done = false;
  double time_ms = 0;
};

namespace halo::cuda_emulator {

int max_block_threads() {
  return omp_get_max_threads();
}

namespace {

using Clock = std::chrono::steady_clock;

struct State {
  std::recursive_mutex mutex;
  std::uint64_t seq = 0;
  CUstream_st legacy;
  std::vector<CUstream_st*> streams;                 // live streams, creation order; legacy first
  std::map<const char*, std::size_t> device_allocs;  // base -> bytes
  std::map<const char*, std::size_t> pinned_allocs;  // base -> bytes
  int global_captures = 0;
  int next_stream_id = 1;
  cudaError_t last_error = cudaSuccess;
  std::string fault;  // message of the last kernel fault
  Clock::time_point start = Clock::now();
  State() {
    legacy.legacy = true;
    streams.push_back(&legacy);
  }
};
State& st() {
  static State* s = new State();  // never destroyed: tensors may free device memory after main
  return *s;
}
using Lock = std::lock_guard<std::recursive_mutex>;

cudaError_t set_error(cudaError_t e) {
  if (e != cudaSuccess) st().last_error = e;
  return e;
}

CUstream_st* resolve(cudaStream_t s) {
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return &st().legacy;
  return s;
}

bool is_live_stream(CUstream_st* s) {
  for (CUstream_st* x : st().streams)
    if (x == s) return true;
  return false;
}

// The allocation of `table` holding [p, p + bytes), or nullptr.
const char* find_range(const std::map<const char*, std::size_t>& table, const void* p,
                       std::size_t bytes) {
  const char* c = static_cast<const char*>(p);
  auto it = table.upper_bound(c);
  if (it == table.begin()) return nullptr;
  --it;
  if (c >= it->first && c + bytes <= it->first + it->second) return it->first;
  return nullptr;
}
bool is_device(const void* p, std::size_t bytes) {
  return find_range(st().device_allocs, p, bytes) != nullptr;
}
bool is_pinned(const void* p, std::size_t bytes) {
  return find_range(st().pinned_allocs, p, bytes) != nullptr;
}

// ---- lazy execution ---------------------------------------------------------------------------

void flush(CUstream_st* s, std::uint64_t up_to);

// Runs the oldest op of s, after the work CUDA orders before it on other streams.
void run_front(CUstream_st* s) {
  CUstream_st::Op op = std::move(s->queue.front());
  s->queue.pop_front();
  State& S = st();
  if (s->legacy) {
    for (CUstream_st* o : S.streams)
      if (!o->legacy && !o->non_blocking) flush(o, op.seq - 1);
  } else if (!s->non_blocking) {
    flush(&S.legacy, op.seq - 1);
  }
  op.run();
}

// Executes every op of s with seq <= up_to.
void flush(CUstream_st* s, std::uint64_t up_to) {
  while (!s->queue.empty() && s->queue.front().seq <= up_to) run_front(s);
}
void flush_all(CUstream_st* s) {
  flush(s, ~std::uint64_t(0));
}
// Every stream, the newest first and the legacy stream last (any order is allowed for work that
// is correctly synchronised; this one exposes a missing wait on the legacy stream).
void flush_device() {
  State& S = st();
  for (auto it = S.streams.rbegin(); it != S.streams.rend(); ++it) flush_all(*it);
}

// Runs `fn` and turns a kernel fault recorded meanwhile into the call's return value.
template <class F>
cudaError_t synchronising(F&& fn) {
  State& S = st();
  const std::string before = S.fault;
  S.fault.clear();
  fn();
  if (!S.fault.empty()) return set_error(cudaErrorLaunchFailure);
  S.fault = before;
  return cudaSuccess;
}

bool capturing_globally() {
  return st().global_captures > 0;
}
// A call CUDA forbids while a global-mode capture is under way: invalidate the captures.
cudaError_t forbidden_during_capture() {
  for (CUstream_st* s : st().streams)
    if (s->capture && s->capture_mode != cudaStreamCaptureModeRelaxed) s->capture_invalid = true;
  return set_error(cudaErrorStreamCaptureUnsupported);
}

// Queues (or, during a capture of s, records) one piece of stream work.
cudaError_t enqueue(cudaStream_t stream, std::string name, std::function<void()> run) {
  State& S = st();
  CUstream_st* s = resolve(stream);
  if (s != &S.legacy && !is_live_stream(s)) return set_error(cudaErrorInvalidResourceHandle);
  if (s->capture) {
    s->capture->ops.push_back(std::move(run));
    s->capture->names.push_back(std::move(name));
    return cudaSuccess;
  }
  if (s->legacy && capturing_globally()) {
    for (CUstream_st* o : S.streams)
      if (o->capture) o->capture_invalid = true;
    return set_error(cudaErrorStreamCaptureImplicit);
  }
  s->queue.push_back({++S.seq, std::move(run), std::move(name)});
  return cudaSuccess;
}

struct ErrorName {
  cudaError_t code;
  const char* name;
  const char* text;
};
constexpr ErrorName kErrors[] = {
    {cudaSuccess, "cudaSuccess", "no error"},
    {cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument"},
    {cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory"},
    {cudaErrorInitializationError, "cudaErrorInitializationError", "initialization error"},
    {cudaErrorInvalidConfiguration, "cudaErrorInvalidConfiguration",
     "invalid configuration argument"},
    {cudaErrorInvalidMemcpyDirection, "cudaErrorInvalidMemcpyDirection",
     "invalid copy direction for memcpy"},
    {cudaErrorNoDevice, "cudaErrorNoDevice", "no CUDA-capable device is detected"},
    {cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal"},
    {cudaErrorInvalidResourceHandle, "cudaErrorInvalidResourceHandle", "invalid resource handle"},
    {cudaErrorIllegalState, "cudaErrorIllegalState",
     "the operation cannot be performed in the present state"},
    {cudaErrorNotReady, "cudaErrorNotReady", "device not ready"},
    {cudaErrorIllegalAddress, "cudaErrorIllegalAddress",
     "an illegal memory access was encountered"},
    {cudaErrorLaunchOutOfResources, "cudaErrorLaunchOutOfResources",
     "too many resources requested for launch"},
    {cudaErrorLaunchFailure, "cudaErrorLaunchFailure", "unspecified launch failure"},
    {cudaErrorNotSupported, "cudaErrorNotSupported", "operation not supported"},
    {cudaErrorStreamCaptureUnsupported, "cudaErrorStreamCaptureUnsupported",
     "operation not permitted when stream is capturing"},
    {cudaErrorStreamCaptureInvalidated, "cudaErrorStreamCaptureInvalidated",
     "operation failed due to a previous error during capture"},
    {cudaErrorStreamCaptureUnmatched, "cudaErrorStreamCaptureUnmatched",
     "capture was not ended in the same stream as it began"},
    {cudaErrorStreamCaptureUnjoined, "cudaErrorStreamCaptureUnjoined",
     "capturing stream has unjoined work"},
    {cudaErrorStreamCaptureImplicit, "cudaErrorStreamCaptureImplicit",
     "operation would make the legacy stream depend on a capturing blocking stream"},
    {cudaErrorStreamCaptureWrongThread, "cudaErrorStreamCaptureWrongThread",
     "attempt to terminate a thread-local capture sequence from another thread"},
    {cudaErrorUnknown, "cudaErrorUnknown", "unknown error"},
};

}  // namespace

// ---- launches ---------------------------------------------------------------------------------

cudaError_t launch(const char* kernel_name, const char* file, int line, dim3 grid, dim3 block,
                   cudaStream_t stream, std::function<void()> body) {
  Lock lock(st().mutex);
  const long long threads = 1LL * block.x * block.y * block.z;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || threads == 0 || threads > 1024 || block.z > 64 ||
      grid.y > 65535 || grid.z > 65535)
    return set_error(cudaErrorInvalidConfiguration);
  auto info = std::make_shared<LaunchInfo>();
  info->name = kernel_name;
  info->site = std::string(file) + ":" + std::to_string(line);
  info->grid = grid;
  info->block = block;
  info->body = std::move(body);
  return enqueue(stream, info->name, [info] {
    const std::string fault = execute_launch(*info);
    if (!fault.empty()) {
      State& S = st();
      S.fault = fault;
      S.last_error = cudaErrorLaunchFailure;
    }
  });
}

}  // namespace halo::cuda_emulator

using namespace halo::cuda_emulator;

// ---- errors -------------------------------------------------------------------------------------

const char* cudaGetErrorName(cudaError_t error) {
  for (const ErrorName& e : kErrors)
    if (e.code == error) return e.name;
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  if (error == cudaErrorLaunchFailure) {
    Lock lock(st().mutex);
    thread_local std::string msg;
    if (!st().fault.empty()) {
      msg = "emulated device: " + st().fault;
      return msg.c_str();
    }
  }
  for (const ErrorName& e : kErrors)
    if (e.code == error) return e.text;
  return "unknown error";
}

cudaError_t cudaGetLastError() {
  Lock lock(st().mutex);
  const cudaError_t e = st().last_error;
  st().last_error = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() {
  Lock lock(st().mutex);
  return st().last_error;
}

// ---- device -------------------------------------------------------------------------------------

cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return set_error(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  if (!device) return set_error(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : set_error(cudaErrorInvalidDevice);
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (!value) return set_error(cudaErrorInvalidValue);
  if (device != 0) return set_error(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock:
    case cudaDevAttrMaxBlockDimX:
      *value = 1024;
      return cudaSuccess;
    case cudaDevAttrMaxGridDimX:
      *value = 2147483647;
      return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlock:
      *value = 48 * 1024;
      return cudaSuccess;
    case cudaDevAttrWarpSize:
      *value = 32;
      return cudaSuccess;
    case cudaDevAttrMultiProcessorCount:
      *value = multiprocessor_count();
      return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor:
      *value = 9;
      return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor:
      *value = 0;
      return cudaSuccess;
  }
  return set_error(cudaErrorInvalidValue);
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (!prop) return set_error(cudaErrorInvalidValue);
  if (device != 0) return set_error(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "Halo emulated CUDA device (CPU, %d OS threads)",
                block_threads());
  prop->totalGlobalMem = std::size_t(16) << 30;
  prop->sharedMemPerBlock = 48 * 1024;
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
  prop->multiProcessorCount = multiprocessor_count();
  prop->major = 9;
  prop->minor = 0;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  Lock lock(st().mutex);
  if (capturing_globally()) return forbidden_during_capture();
  return synchronising([] { flush_device(); });
}

cudaError_t cudaDeviceReset() {
  Lock lock(st().mutex);
  flush_device();
  st().fault.clear();
  st().last_error = cudaSuccess;
  return cudaSuccess;
}

// ---- memory -------------------------------------------------------------------------------------

cudaError_t cudaMalloc(void** ptr, std::size_t bytes) {
  Lock lock(st().mutex);
  if (!ptr) return set_error(cudaErrorInvalidValue);
  if (capturing_globally()) return forbidden_during_capture();
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
  void* p = nullptr;
  if (bytes > (std::size_t(1) << 40) || posix_memalign(&p, 256, bytes) != 0)
    return set_error(cudaErrorMemoryAllocation);
  std::memset(p, 0xFF, bytes);
  st().device_allocs[static_cast<const char*>(p)] = bytes;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  Lock lock(st().mutex);
  if (!ptr) return cudaSuccess;
  if (capturing_globally()) return forbidden_during_capture();
  auto it = st().device_allocs.find(static_cast<const char*>(ptr));
  if (it == st().device_allocs.end()) return set_error(cudaErrorInvalidValue);
  const cudaError_t e = synchronising([] { flush_device(); });  // cudaFree synchronises the device
  st().device_allocs.erase(it);
  std::free(ptr);
  return e;
}

cudaError_t cudaHostAlloc(void** ptr, std::size_t bytes, unsigned) {
  Lock lock(st().mutex);
  if (!ptr) return set_error(cudaErrorInvalidValue);
  if (capturing_globally()) return forbidden_during_capture();
  void* p = nullptr;
  if (posix_memalign(&p, 4096, bytes ? bytes : 1) != 0) return set_error(cudaErrorMemoryAllocation);
  st().pinned_allocs[static_cast<const char*>(p)] = bytes ? bytes : 1;
  *ptr = p;
  return cudaSuccess;
}
cudaError_t cudaMallocHost(void** ptr, std::size_t bytes) {
  return cudaHostAlloc(ptr, bytes, cudaHostAllocDefault);
}

cudaError_t cudaFreeHost(void* ptr) {
  Lock lock(st().mutex);
  if (!ptr) return cudaSuccess;
  if (capturing_globally()) return forbidden_during_capture();
  auto it = st().pinned_allocs.find(static_cast<const char*>(ptr));
  if (it == st().pinned_allocs.end()) return set_error(cudaErrorInvalidValue);
  const cudaError_t e = synchronising([] { flush_device(); });
  st().pinned_allocs.erase(it);
  std::free(ptr);
  return e;
}

cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes) {
  Lock lock(st().mutex);
  std::size_t used = 0;
  for (auto& [p, n] : st().device_allocs) used += n;
  const std::size_t total = std::size_t(16) << 30;
  if (free_bytes) *free_bytes = used < total ? total - used : 0;
  if (total_bytes) *total_bytes = total;
  return cudaSuccess;
}

namespace {

// Checks the pointers of a copy against its kind; returns the error or cudaSuccess.
cudaError_t check_copy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind& kind) {
  if (kind == cudaMemcpyDefault) {
    const bool d = is_device(dst, bytes), s = is_device(src, bytes);
    kind = d ? (s ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
             : (s ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  }
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDeviceToDevice)
    return cudaErrorInvalidMemcpyDirection;
  if (dst_dev != is_device(dst, bytes) || src_dev != is_device(src, bytes))
    return cudaErrorInvalidValue;  // a host pointer given as device memory, or past the end
  return cudaSuccess;
}

cudaError_t copy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                 cudaStream_t stream, bool sync_api) {
  Lock lock(st().mutex);
  if (bytes == 0) return cudaSuccess;
  if (const cudaError_t e = check_copy(dst, src, bytes, kind); e != cudaSuccess)
    return set_error(e);
  CUstream_st* s = resolve(stream);
  if (sync_api && capturing_globally()) return forbidden_during_capture();
  if (kind == cudaMemcpyHostToHost) {
    return synchronising([&] {
      flush_all(s);
      std::memcpy(dst, src, bytes);
    });
  }
  if (kind == cudaMemcpyHostToDevice && !is_pinned(src, bytes)) {
    // Pageable source: CUDA copies it to a staging buffer before returning.
    if (s->capture) return forbidden_during_capture();
    auto staged = std::make_shared<std::vector<char>>(static_cast<const char*>(src),
                                                      static_cast<const char*>(src) + bytes);
    return enqueue(stream, "memcpy HtoD",
                   [dst, staged] { std::memcpy(dst, staged->data(), staged->size()); });
  }
  if (kind == cudaMemcpyDeviceToHost && !is_pinned(dst, bytes)) {
    // Pageable destination: the call returns once the copy is done.
    if (s->capture) return forbidden_during_capture();
    if (const cudaError_t e =
            enqueue(stream, "memcpy DtoH", [dst, src, bytes] { std::memcpy(dst, src, bytes); });
        e != cudaSuccess)
      return e;
    const std::uint64_t seq = st().seq;
    return synchronising([&] { flush(s, seq); });
  }
  // Device to device, or to / from pinned memory: stream-ordered.
  const cudaError_t e =
      enqueue(stream, "memcpy", [dst, src, bytes] { std::memcpy(dst, src, bytes); });
  if (e != cudaSuccess || !sync_api || kind == cudaMemcpyDeviceToDevice) return e;
  const std::uint64_t seq = st().seq;
  return synchronising([&] { flush(s, seq); });
}

}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
  return copy(dst, src, bytes, kind, nullptr, true);
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  return copy(dst, src, bytes, kind, stream, false);
}

cudaError_t cudaMemsetAsync(void* ptr, int value, std::size_t bytes, cudaStream_t stream) {
  Lock lock(st().mutex);
  if (bytes == 0) return cudaSuccess;
  if (!is_device(ptr, bytes)) return set_error(cudaErrorInvalidValue);
  return enqueue(stream, "memset", [ptr, value, bytes] { std::memset(ptr, value, bytes); });
}
cudaError_t cudaMemset(void* ptr, int value, std::size_t bytes) {
  Lock lock(st().mutex);
  if (capturing_globally()) return forbidden_during_capture();
  return cudaMemsetAsync(ptr, value, bytes, nullptr);  // asynchronous to the host, as on a GPU
}

// ---- streams ------------------------------------------------------------------------------------

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  Lock lock(st().mutex);
  if (!stream) return set_error(cudaErrorInvalidValue);
  auto* s = new CUstream_st();
  s->id = st().next_stream_id++;
  s->non_blocking = (flags & cudaStreamNonBlocking) != 0;
  st().streams.push_back(s);
  *stream = s;
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  Lock lock(st().mutex);
  CUstream_st* s = resolve(stream);
  if (s->legacy || !is_live_stream(s)) return set_error(cudaErrorInvalidResourceHandle);
  // Work already queued still runs (CUDA lets it complete); do it now.
  const cudaError_t e = synchronising([&] { flush_all(s); });
  auto& v = st().streams;
  v.erase(std::find(v.begin(), v.end(), s));
  delete s->capture;
  delete s;
  return e;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  Lock lock(st().mutex);
  CUstream_st* s = resolve(stream);
  if (!s->legacy && !is_live_stream(s)) return set_error(cudaErrorInvalidResourceHandle);
  if (s->capture || capturing_globally()) return forbidden_during_capture();
  return synchronising([&] { flush_all(s); });
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
  Lock lock(st().mutex);
  CUstream_st* s = resolve(stream);
  if (s->capture) return forbidden_during_capture();
  return synchronising([&] { flush_all(s); });  // the emulated device makes progress when asked
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
  Lock lock(st().mutex);
  if (!event) return set_error(cudaErrorInvalidResourceHandle);
  if (!event->recorded) return cudaSuccess;  // waiting for an unrecorded event is a no-op
  CUstream_st* src = event->stream;
  const std::uint64_t seq = event->seq;
  return enqueue(stream, "wait event", [src, seq] {
    if (is_live_stream(src)) flush(src, seq);
  });
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  Lock lock(st().mutex);
  CUstream_st* s = resolve(stream);
  if (s->legacy) return set_error(cudaErrorStreamCaptureUnsupported);
  if (s->capture) return set_error(cudaErrorIllegalState);
  // Capture records from here on: what is already queued still runs before the graph.
  s->capture = new CUgraph_st();
  s->capture_mode = mode;
  s->capture_invalid = false;
  if (mode == cudaStreamCaptureModeGlobal) st().global_captures++;
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  Lock lock(st().mutex);
  CUstream_st* s = resolve(stream);
  if (!s->capture) return set_error(cudaErrorIllegalState);
  if (s->capture_mode == cudaStreamCaptureModeGlobal) st().global_captures--;
  CUgraph_st* g = s->capture;
  s->capture = nullptr;
  if (graph) *graph = nullptr;
  if (s->capture_invalid) {
    delete g;
    return set_error(cudaErrorStreamCaptureInvalidated);
  }
  if (graph)
    *graph = g;
  else
    delete g;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  Lock lock(st().mutex);
  if (!status) return set_error(cudaErrorInvalidValue);
  CUstream_st* s = resolve(stream);
  *status = !s->capture ? cudaStreamCaptureStatusNone
                        : (s->capture_invalid ? cudaStreamCaptureStatusInvalidated
                                              : cudaStreamCaptureStatusActive);
  return cudaSuccess;
}

// ---- events -------------------------------------------------------------------------------------

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
  if (!event) return set_error(cudaErrorInvalidValue);
  *event = new CUevent_st();
  (*event)->timing = (flags & cudaEventDisableTiming) == 0;
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* event) {
  return cudaEventCreateWithFlags(event, cudaEventDefault);
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (!event) return set_error(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  Lock lock(st().mutex);
  if (!event) return set_error(cudaErrorInvalidResourceHandle);
  CUstream_st* s = resolve(stream);
  if (s->capture) {  // a node of the graph: marks the event when the graph runs
    return enqueue(stream, "event record", [event] {
      event->done = true;
      event->time_ms = std::chrono::duration<double, std::milli>(Clock::now() - st().start).count();
    });
  }
  event->recorded = true;
  event->done = false;
  event->stream = s;
  if (const cudaError_t e = enqueue(
          stream, "event record",
          [event] {
            event->done = true;
            event->time_ms =
                std::chrono::duration<double, std::milli>(Clock::now() - st().start).count();
          });
      e != cudaSuccess)
    return e;
  event->seq = st().seq;
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  Lock lock(st().mutex);
  if (!event) return set_error(cudaErrorInvalidResourceHandle);
  if (capturing_globally()) return forbidden_during_capture();
  if (!event->recorded || event->done) return cudaSuccess;
  CUstream_st* s = event->stream;
  const std::uint64_t seq = event->seq;
  return synchronising([&] {
    if (is_live_stream(s)) flush(s, seq);
  });
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  return cudaEventSynchronize(event);
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  Lock lock(st().mutex);
  if (!ms || !start || !end) return set_error(cudaErrorInvalidValue);
  if (!start->timing || !end->timing) return set_error(cudaErrorInvalidResourceHandle);
  if (!start->done || !end->done) return set_error(cudaErrorNotReady);
  *ms = float(end->time_ms - start->time_ms);
  return cudaSuccess;
}

// ---- graphs -------------------------------------------------------------------------------------

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (!exec || !graph) return set_error(cudaErrorInvalidValue);
  auto* e = new CUgraphExec_st();
  e->ops = graph->ops;
  e->names = graph->names;
  *exec = e;
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  Lock lock(st().mutex);
  if (!exec) return set_error(cudaErrorInvalidValue);
  for (std::size_t i = 0; i < exec->ops.size(); ++i)
    if (const cudaError_t e = enqueue(stream, exec->names[i], exec->ops[i]); e != cudaSuccess)
      return e;
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
