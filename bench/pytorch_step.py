#!/usr/bin/env python3
"""Halo against PyTorch + timm on the same models, step by step: time, memory, and time per layer.

scripts/compare_pytorch.sh runs this after installing PyTorch and building Halo; by hand:

    /usr/bin/python3 bench/pytorch_step.py --profile auto --output comparison.md

It prints four tables (and --output writes them as markdown):
  1. Training step (forward, MSE loss, backward, Adam; batch 16 of 1x150x150, 2 threads), ms per
     image: PyTorch, Halo for each kernel choice bench_models offers, and Halo / PyTorch.
     Halo's numbers are bench_models' TrainStep/<model>[/<kernels>] benchmarks.
  2. Eval forward (eval mode, no gradients), ms per image: PyTorch at --eval-batch (64), Halo's
     EvalForward/<model>[/<kernels>] at the batch it runs (printed; compared per image).
  3. Peak resident memory (ru_maxrss) of one process that runs one model's training step, MiB,
     for each side: every model (and kernel choice) is its own fresh process.
  4. With --profile MODEL (or auto: the model with the highest Halo / PyTorch step ratio): the
     forward time of every leaf layer, Halo's `model_tool profile` beside timm's module of the same
     name timed the same way (forward hooks, wall clock, one warm-up pass then the mean of
     --profile-repeats passes in training mode), then the whole forward and the backward.

Halo's binaries come from --halo-bin DIR (default $HALO_BIN or build/): DIR/bench/bench_models and
DIR/apps/model_tool as the build lays them out, or DIR/bench_models and DIR/model_tool side by
side. --halo BENCH.json takes Halo's times from an existing `bench_models --benchmark_format=json`
output instead of running it (no Halo memory then).

On a GPU (batch 64, TF32 as PyTorch's defaults; compares with Halo's GpuTrainStep/<model>/<kernels>;
the training-step table only):
    build/bench/bench_models --benchmark_filter=GpuTrainStep --benchmark_format=json > gpu.json
    python3 bench/pytorch_step.py --device cuda --batch 64 --halo gpu.json

By default the PyTorch processes run with glibc's malloc tuned to keep freed memory
(MALLOC_MMAP_THRESHOLD_ etc.): without it PyTorch's step time on these VMs varies by up to 2x
between processes from page faults (see ../shared/reference/architectures.md, "Timing and
memory"); --default-malloc turns that off. Halo runs with the environment it is given.
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

MODELS = ("resnet18", "resnet26", "convnext_pico")
CHILDREN = ("child-train", "child-eval", "child-profile")  # how this script calls itself
TUNED_MALLOC = {
    "MALLOC_MMAP_THRESHOLD_": "33554432",
    "MALLOC_TRIM_THRESHOLD_": "17179869184",
    "MALLOC_TOP_PAD_": "1073741824",
}


# --------------------------------------------------------------------------------------------
# PyTorch side. Each function runs in a child process of its own (--child-*), so that one model's
# allocations, thread pools and page faults do not colour the next one's numbers, and so that the
# child's peak RSS is that of one model's training step alone.
# --------------------------------------------------------------------------------------------

def rss_mib(field):
    """VmRSS / VmHWM of this process in MiB, from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def make_model(name, threads, device):
    import torch
    import timm

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    # The RSS of the libraries alone, before any model exists: a fixed cost Halo does not have.
    rss_libraries = rss_mib("VmRSS")
    model = timm.create_model(name, pretrained=False, in_chans=1, num_classes=1).to(device)
    return torch, timm, model, rss_libraries


def child_train(name, batch, size, threads, warmup, iters, device):
    """One training step (as bench_models' TrainStep): median, min, max ms per image, CPU use."""
    import torch.nn.functional as F

    torch, timm, model, rss_libraries = make_model(name, threads, device)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 1, size, size, device=device)
    y = torch.randn(batch, 1, device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    times = []
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1000.0 / batch)
    cpu_util = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    return {"model": name, "median": statistics.median(times), "min": min(times),
            "max": max(times), "cpu_util": cpu_util, "rss_libraries_mib": rss_libraries,
            "torch": torch.__version__, "timm": timm.__version__}


def child_eval(name, batch, size, threads, warmup, iters):
    """Eval-mode forward under torch.no_grad(): median ms per image and CPU use."""
    torch, _, model, _ = make_model(name, threads, "cpu")
    model.eval()
    x = torch.randn(batch, 1, size, size)
    times = []
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        cpu0 = time.process_time()
        wall0 = time.perf_counter()
        for _ in range(iters):
            t0 = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t0) * 1000.0 / batch)
        cpu_util = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    return {"model": name, "median": statistics.median(times), "cpu_util": cpu_util}


def child_profile(name, batch, size, threads, repeats):
    """Forward ms of every module (by timm's dotted name) and of the whole forward and backward,
    measured as Halo's `model_tool profile` does (models::profile_forward): training mode with
    gradients, one warm-up pass, then the mean over `repeats` passes of the wall time from just
    before a module's forward to just after it returns."""
    import torch.nn.functional as F

    torch, _, model, _ = make_model(name, threads, "cpu")
    model.train()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 1, size, size, generator=g)
    target = torch.randn(batch, 1, generator=g)

    ms = {}
    started = []  # a stack: a module's pre-hook runs before its children's
    recording = [False]

    def pre_hook(module, inputs):
        started.append(time.perf_counter())

    def make_post_hook(module_name):
        def post_hook(module, inputs, output):
            elapsed = (time.perf_counter() - started.pop()) * 1000.0
            if recording[0]:
                ms[module_name] = ms.get(module_name, 0.0) + elapsed / repeats
        return post_hook

    handles = []
    for module_name, module in model.named_modules():
        if module_name:  # the model itself is the whole forward, timed below without hooks
            handles.append(module.register_forward_pre_hook(pre_hook))
            handles.append(module.register_forward_hook(make_post_hook(module_name)))
    model(x)  # warm-up: the allocator's cache, first touch of pages (as profile_forward)
    recording[0] = True
    for _ in range(repeats):
        model(x)
    for h in handles:
        h.remove()

    # The whole forward, and forward + loss + backward, exactly as model_tool profile times them.
    fwd_ms = step_ms = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        y = model(x)
        t1 = time.perf_counter()
        model.zero_grad()
        F.mse_loss(y, target).backward()
        t2 = time.perf_counter()
        fwd_ms += (t1 - t0) * 1000.0 / repeats
        step_ms += (t2 - t0) * 1000.0 / repeats
    return {"model": name, "layers": ms, "forward_ms": fwd_ms, "step_ms": step_ms}


# --------------------------------------------------------------------------------------------
# Running child processes, with each one's own peak RSS.
# --------------------------------------------------------------------------------------------

def run_measured(cmd, env):
    """Runs cmd to the end; returns (stdout, peak RSS in MiB of that process alone).

    os.wait4 gives the rusage of exactly this child (getrusage(RUSAGE_CHILDREN) would be the
    maximum over every child so far). Output goes to temporary files so that a chatty child can
    not fill a pipe while we wait."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        sys.exit(f"pytorch_step: {' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return stdout, usage.ru_maxrss / 1024.0  # ru_maxrss is in KiB on Linux


def run_python_child(kind, name, args, env, batch=None):
    cmd = [sys.executable, os.path.abspath(__file__), kind, name,
           "--batch", str(args.batch if batch is None else batch), "--size", str(args.size),
           "--threads", str(args.threads), "--warmup", str(args.warmup), "--iters",
           str(args.iters), "--profile-repeats", str(args.profile_repeats), "--device",
           args.device]
    stdout, peak = run_measured(cmd, env)
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_mib"] = peak
    return result


# --------------------------------------------------------------------------------------------
# Halo side: bench_models (Google Benchmark JSON) and model_tool profile.
# --------------------------------------------------------------------------------------------

def find_binary(halo_bin, subdir, name):
    """build/ layout (build/bench/bench_models) or a flat folder of binaries."""
    for path in (os.path.join(halo_bin, subdir, name), os.path.join(halo_bin, name)):
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def split_benchmark_name(name):
    """'TrainStep/resnet18/onednn/min_time:3.000/real_time' -> ('TrainStep', 'resnet18', 'onednn').

    Google Benchmark appends the run's settings (min_time:..., real_time) to the name; those are
    dropped. The kernel part is '' for the older names without one (TrainStep/<model>)."""
    parts = [p for p in name.split("/")
             if ":" not in p and p not in ("real_time", "process_time", "manual_time")]
    parts += [""] * (3 - len(parts))
    return parts[0], parts[1], parts[2]


def halo_numbers(data):
    """{(kind, model, kernels): {ms, batch, cpu_util}} from a Google Benchmark JSON document."""
    out = {}
    for b in data.get("benchmarks", []):
        if "error_occurred" in b or b.get("run_type") == "aggregate":
            continue
        key = split_benchmark_name(b.get("name", ""))
        ms = float(b["time_per_image"]) * 1000.0  # seconds per image in the JSON
        if "batch" in b:
            batch, derived = int(b["batch"]), False
        else:
            # bench_models records no batch counter: images_per_s is batch * iterations / seconds,
            # so batch = images_per_s * seconds per iteration.
            scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b.get("time_unit", "ns")]
            batch, derived = round(float(b["images_per_s"]) * float(b["real_time"]) * scale), True
        out[key] = {"ms": ms, "batch": batch, "batch_derived": derived,
                    "cpu_util": b.get("cpu_util")}
    return out


def posix_escape(text):
    """Escapes a literal for Google Benchmark's --benchmark_filter (a POSIX extended regex)."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", text)


def run_halo(bench, models, threads, device):
    """Runs bench_models: each training step in a process of its own (its time and peak RSS),
    the eval forwards together in one more. Returns (numbers, {(model, kernels): peak MiB})."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    listed = subprocess.run([bench, "--benchmark_list_tests"], env=env, check=True,
                            capture_output=True, text=True).stdout.split()
    step_kind = "GpuTrainStep" if device == "cuda" else "TrainStep"
    numbers, peaks = {}, {}
    for full in listed:
        kind, model, kernels = split_benchmark_name(full)
        if kind != step_kind or model not in models:
            continue
        cmd = [bench, f"--benchmark_filter=^{posix_escape(full)}$", "--benchmark_format=json"]
        stdout, peak = run_measured(cmd, env)
        found = halo_numbers(json.loads(stdout))
        numbers.update(found)
        if device == "cpu":
            peaks[(model, kernels)] = peak
        for key, r in found.items():
            print(f"halo    {'/'.join(k for k in key if k):30s} {r['ms']:8.2f} ms/image, "
                  f"peak RSS {peak:7.1f} MiB", file=sys.stderr, flush=True)
    evals = [full for full in listed if split_benchmark_name(full)[0] == "EvalForward"
             and split_benchmark_name(full)[1] in models]
    if device == "cpu" and evals:
        pattern = "^(" + "|".join(posix_escape(full) for full in evals) + ")$"
        stdout, _ = run_measured([bench, f"--benchmark_filter={pattern}",
                                  "--benchmark_format=json"], env)
        found = halo_numbers(json.loads(stdout))
        numbers.update(found)
        for key, r in found.items():
            print(f"halo    {'/'.join(k for k in key if k):30s} {r['ms']:8.2f} ms/image "
                  f"(batch {r['batch']})", file=sys.stderr, flush=True)
    return numbers, peaks


PROFILE_ROW = re.compile(
    r"^(\s*)(\S+)\s+(\S+)\s+(\[[^\]]*\])\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*$")


def halo_profile(model_tool, model, batch, size, threads, repeats):
    """Runs `model_tool profile` and parses its table: [(name, type, ms)] in network order, the
    whole forward ms and the forward + loss + backward ms."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    text = subprocess.run([model_tool, "profile", "--model", model, "--batch", str(batch),
                           "--size", str(size), "--repeats", str(repeats)], env=env, check=True,
                          capture_output=True, text=True).stdout
    rows = []
    for line in text.splitlines():
        m = PROFILE_ROW.match(line)
        if m:
            rows.append((m.group(2), m.group(3), float(m.group(6))))
    totals = re.search(r"forward ([\d.]+) ms .*forward \+ loss \+ backward ([\d.]+) ms", text)
    if not rows or not totals:
        sys.exit(f"pytorch_step: could not read model_tool profile's output:\n{text[-2000:]}")
    return rows, float(totals.group(1)), float(totals.group(2))


# --------------------------------------------------------------------------------------------
# Tables, printed aligned and written as markdown.
# --------------------------------------------------------------------------------------------

class Report:
    def __init__(self):
        self.blocks = []  # ("text", str) or ("table", header, rows)

    def text(self, s):
        self.blocks.append(("text", s))

    def table(self, header, rows, left=1):
        """`left`: how many leading columns hold names (left-aligned); the rest are numbers."""
        self.blocks.append(("table", header, rows, left))

    def plain(self):
        out = []
        for block in self.blocks:
            if block[0] == "text":
                out.append(block[1])
                continue
            header, rows, left = block[1], block[2], block[3]
            widths = [max(len(str(r[i]).replace("**", "")) for r in [header] + rows) for i in range(len(header))]
            for r in [header] + rows:
                r = [str(c).replace("**", "") for c in r]  # markdown bold, for the totals
                cells = [str(c).ljust(w) if i < left else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths))]
                out.append("  ".join(cells).rstrip())
        return "\n".join(out)

    def markdown(self):
        out = []
        for block in self.blocks:
            if block[0] == "text":
                out.append(block[1])
                continue
            header, rows, left = block[1], block[2], block[3]
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "|".join(["---"] * left + ["---:"] * (len(header) - left)) + "|")
            for r in rows:
                out.append("| " + " | ".join(str(c) for c in r) + " |")
        return "\n".join(out)


def fmt(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def kernel_label(kernels):
    return f"Halo ({kernels})" if kernels else "Halo"


def ratio_label(kernels, count):
    return "Halo/PyTorch" if count == 1 else f"Halo/PyTorch ({kernels})"


def profile_tables(report, model, halo_rows, halo_fwd, halo_step, torch_prof, batch, size,
                   threads, repeats):
    # Leaf layers: rows with no child rows under them. model_tool prints a pre-order walk, so a
    # row's children, if any, follow it directly.
    leaves = [r for i, r in enumerate(halo_rows)
              if i + 1 == len(halo_rows) or not halo_rows[i + 1][0].startswith(r[0] + ".")]
    torch_ms = torch_prof["layers"]
    rows = []
    halo_sum = torch_sum = 0.0
    by_type = {}
    for name, kind, ms in leaves:
        t = torch_ms.get(name)  # timm's module of the same dotted name (Halo uses timm's names)
        rows.append((name, kind, fmt(ms), fmt(t), fmt(ratio(ms, t))))
        halo_sum += ms
        torch_sum += t or 0.0
        h_k, t_k = by_type.get(kind, (0.0, 0.0))
        by_type[kind] = (h_k + ms, t_k + (t or 0.0))
    halo_bwd, torch_bwd = halo_step - halo_fwd, torch_prof["step_ms"] - torch_prof["forward_ms"]
    rows.append(("**leaf layers, total**", "", fmt(halo_sum), fmt(torch_sum),
                 fmt(ratio(halo_sum, torch_sum))))
    rows.append(("**forward (whole pass)**", "", fmt(halo_fwd), fmt(torch_prof["forward_ms"]),
                 fmt(ratio(halo_fwd, torch_prof["forward_ms"]))))
    rows.append(("**backward (incl. loss)**", "", fmt(halo_bwd), fmt(torch_bwd),
                 fmt(ratio(halo_bwd, torch_bwd))))
    rows.append(("**forward + loss + backward**", "", fmt(halo_step),
                 fmt(torch_prof["step_ms"]), fmt(ratio(halo_step, torch_prof["step_ms"]))))
    report.text(f"\n### Where the time goes: {model}, per layer\n")
    report.text(f"Forward time of each leaf layer in training mode, ms per batch of {batch} "
                f"(1x{size}x{size}), {threads} threads, mean of {repeats} passes after one "
                f"warm-up. Halo: `model_tool profile --model {model} --batch {batch} --size "
                f"{size} --repeats {repeats}`; PyTorch: timm's module of the same name, timed "
                f"with forward hooks the same way. Backward = forward + MSE + backward minus "
                f"the forward (no optimizer step). The per-layer sum leaves out what runs "
                f"between layers (residual adds, ConvNeXt's layer scale) and adds the hooks' own "
                f"cost.\n")
    report.table(["layer", "type", "Halo ms", "PyTorch ms", "Halo/PyTorch"], rows, left=2)
    report.text(f"\nBy layer type ({model}, leaf layers, forward):\n")
    kinds = sorted(by_type.items(), key=lambda kv: -kv[1][0])
    report.table(["type", "Halo ms", "Halo share", "PyTorch ms", "Halo/PyTorch"],
                 [(k, fmt(h), f"{100.0 * h / halo_sum:.1f}%", fmt(t), fmt(ratio(h, t)))
                  for k, (h, t) in kinds])


# --------------------------------------------------------------------------------------------

def median_over_rounds(rounds, field):
    """One dict from a list of per-round dicts (same keys): each entry is the first round's, with
    `field` replaced by its median over the rounds, `min`/`max` by the extremes where present,
    `peak_mib` by the largest, and `rounds` listing every round's value."""
    out = {}
    for key in rounds[0]:
        values = [r[key][field] for r in rounds if key in r and r[key].get(field) is not None]
        entry = dict(rounds[0][key])
        if values:
            entry[field] = statistics.median(values)
            entry["rounds"] = values
        for agg, fn in (("min", min), ("max", max), ("peak_mib", max)):
            vals = [r[key][agg] for r in rounds if key in r and r[key].get(agg) is not None]
            if vals:
                entry[agg] = fn(vals)
        out[key] = entry
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--batch", type=int, default=16,
                   help="PyTorch's training-step batch and model_tool's (16); bench_models' is "
                   "its own, printed where it differs")
    p.add_argument("--eval-batch", type=int, default=64,
                   help="PyTorch's eval-forward batch (64); Halo's is bench_models' own")
    p.add_argument("--size", type=int, default=150)
    p.add_argument("--threads", type=int, default=2, help="threads for both sides (2)")
    p.add_argument("--warmup", type=int, default=3, help="PyTorch warm-up steps")
    p.add_argument("--rounds", type=int, default=1,
                   help="run Halo then PyTorch this many times in turn; report medians (1)")
    p.add_argument("--iters", type=int, default=5, help="PyTorch timed steps (median)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--default-malloc", action="store_true", help="do not tune glibc malloc")
    p.add_argument("--halo-bin", default=os.environ.get("HALO_BIN", "build"),
                   help="folder of Halo's binaries: a build folder or a flat one (build)")
    p.add_argument("--halo", help="take Halo's times from this bench_models JSON output "
                   "instead of running bench_models")
    p.add_argument("--profile", default="none",
                   help="model for the per-layer table; 'auto': the highest Halo/PyTorch step "
                   "ratio; 'none' (default): no per-layer table")
    p.add_argument("--profile-repeats", type=int, default=3)
    p.add_argument("--output", help="also write the tables as markdown to this file")
    p.add_argument("--json", help="also write the raw PyTorch and Halo results here")
    p.add_argument("child", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args()

    # A child process: `pytorch_step.py child-train MODEL --batch ...` (see run_python_child).
    if args.child:
        if len(args.child) != 2 or args.child[0] not in CHILDREN:
            p.error(f"unexpected arguments: {' '.join(args.child)}")
        kind, name = args.child
        if kind == "child-train":
            r = child_train(name, args.batch, args.size, args.threads, args.warmup, args.iters,
                            args.device)
        elif kind == "child-eval":
            r = child_eval(name, args.batch, args.size, args.threads, args.warmup, args.iters)
        else:
            r = child_profile(name, args.batch, args.size, args.threads, args.profile_repeats)
        print(json.dumps(r))
        return 0
    if args.profile not in ("none", "auto") + MODELS:
        p.error(f"--profile: one of none, auto, {', '.join(MODELS)}")

    cpu = args.device == "cpu"
    env = dict(os.environ)
    if not args.default_malloc:
        env.update(TUNED_MALLOC)

    # Halo, then PyTorch: never both at once, they would share the cores. With --rounds N the pair
    # runs N times in turn and each number is the median over the rounds: on a shared VM the speed
    # of the whole machine drifts by 20-40% over minutes, and alternating keeps such a drift from
    # landing on one side only.
    bench = find_binary(args.halo_bin, "bench", "bench_models")
    if not args.halo and not bench:
        sys.exit(f"pytorch_step: no bench_models under {args.halo_bin} (build Halo with "
                 f"scripts/build.sh, or pass --halo-bin DIR or --halo BENCH.json)")
    halo_rounds, train_rounds, eval_rounds = [], [], []
    halo_peaks = {}
    for rnd in range(args.rounds):
        if args.rounds > 1:
            print(f"round {rnd + 1} of {args.rounds}", file=sys.stderr, flush=True)
        if args.halo:
            with open(args.halo) as f:
                halo_rounds.append(halo_numbers(json.load(f)))
        else:
            h, peaks = run_halo(bench, args.models, args.threads, args.device)
            halo_rounds.append(h)
            for key, mib in peaks.items():
                halo_peaks[key] = max(halo_peaks.get(key, 0.0), mib)
        train_r, evals_r = {}, {}
        for name in args.models:
            r = train_r[name] = run_python_child("child-train", name, args, env)
            print(f"pytorch TrainStep/{name:20s} {r['median']:8.2f} ms/image (min {r['min']:.2f}, "
                  f"max {r['max']:.2f}; cpu use {r['cpu_util']:.2f} cores), peak RSS "
                  f"{r['peak_mib']:7.1f} MiB", file=sys.stderr, flush=True)
            if cpu:
                r = evals_r[name] = run_python_child("child-eval", name, args, env,
                                                     args.eval_batch)
                print(f"pytorch EvalForward/{name:18s} {r['median']:8.2f} ms/image (batch "
                      f"{args.eval_batch})", file=sys.stderr, flush=True)
        train_rounds.append(train_r)
        eval_rounds.append(evals_r)
    halo = median_over_rounds(halo_rounds, "ms")
    train = median_over_rounds(train_rounds, "median")
    evals = median_over_rounds(eval_rounds, "median")

    step_kind = "TrainStep" if cpu else "GpuTrainStep"
    kernels = sorted({k for (kind, _, k) in halo if kind == step_kind})
    first = next(iter(train.values()))
    report = Report()
    report.text(f"## Halo vs PyTorch on the {'CPU' if cpu else 'GPU'}\n")
    report.text(f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, {cpu_name()}, "
                f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end. "
                f"PyTorch {first['torch']} + timm {first['timm']} "
                f"({'default' if args.default_malloc else 'tuned'} malloc, median of "
                f"{args.iters} after {args.warmup} warm-up"
                f"{f'; median of {args.rounds} rounds, Halo and PyTorch in turn' if args.rounds > 1 else ''}"
                f"), Halo's bench_models "
                f"({args.halo or bench}). {args.threads} threads each.\n")
    # compare_pytorch.sh passes its own command line, the one to quote when rerunning.
    cmd = os.environ.get("COMPARE_COMMAND") or " ".join(["bench/pytorch_step.py"] + sys.argv[1:])
    report.text(f"Command: `{cmd.strip()}`\n")

    # 1. Training step.
    report.text(f"### Training step, ms per image\n")
    report.text(f"Forward + MSE + backward + Adam, batch {args.batch} of 1x{args.size}x"
                f"{args.size}.\n")
    header = ["model", "PyTorch"]
    for k in kernels:
        header += [kernel_label(k), ratio_label(k, len(kernels))]
    rows, ratios = [], {}
    for name in args.models:
        t = train[name]["median"]
        row = [name, fmt(t)]
        for k in kernels:
            h = halo.get((step_kind, name, k), {}).get("ms")
            row += [fmt(h), fmt(ratio(h, t))]
            if ratio(h, t) is not None:
                ratios[name] = max(ratios.get(name, 0.0), ratio(h, t))
        rows.append(row)
    report.table(header, rows)
    step_batches = sorted({r["batch"] for (kind, _, _), r in halo.items() if kind == step_kind})
    if step_batches and step_batches != [args.batch]:
        # --batch sets PyTorch's batch (and model_tool's); bench_models' batch is compiled in.
        report.text(f"\nHalo's {step_kind} runs batch {'/'.join(map(str, step_batches))}, "
                    f"PyTorch {args.batch}: compared per image.")
    utils = [r["cpu_util"] for (kind, _, _), r in halo.items()
             if kind == step_kind and r.get("cpu_util")]
    report.text(f"\nCPU use during the timed steps, cores busy (about {args.threads} when the "
                f"machine was otherwise quiet; less means the threads waited for a core and "
                f"the times are not to be trusted): PyTorch "
                f"{min(r['cpu_util'] for r in train.values()):.2f}-"
                f"{max(r['cpu_util'] for r in train.values()):.2f}"
                + (f", Halo {min(utils):.2f}-{max(utils):.2f}." if utils else "."))

    if cpu:
        # 2. Eval forward.
        eval_kernels = sorted({k for (kind, _, k) in halo if kind == "EvalForward"})
        report.text(f"\n### Eval forward, ms per image\n")
        report.text(f"Eval mode, no gradients (PyTorch: model.eval() and torch.no_grad()). "
                    f"Batches differ where noted; compared per image.\n")
        header = ["model", f"PyTorch (batch {args.eval_batch})"]
        batches = set()
        for k in eval_kernels:
            bs = {r["batch"] for (kind, _, kk), r in halo.items()
                  if kind == "EvalForward" and kk == k}
            batches |= bs
            header += [f"{kernel_label(k)} (batch {'/'.join(str(b) for b in sorted(bs))})",
                       ratio_label(k, len(eval_kernels))]
        rows = []
        for name in args.models:
            t = evals[name]["median"]
            row = [name, fmt(t)]
            for k in eval_kernels:
                h = halo.get(("EvalForward", name, k), {}).get("ms")
                row += [fmt(h), fmt(ratio(h, t))]
            rows.append(row)
        report.table(header, rows)
        derived = any(r["batch_derived"] for (kind, _, _), r in halo.items()
                      if kind == "EvalForward")
        if batches and batches != {args.eval_batch}:
            report.text(f"\nHalo's EvalForward runs batch {'/'.join(map(str, sorted(batches)))}, "
                        f"not {args.eval_batch}"
                        + (" (bench_models records no batch counter: it is images_per_s times "
                           "the time per iteration)" if derived else "") + ".")

        # 3. Peak memory of a training step.
        report.text(f"\n### Peak resident memory of a training step, MiB\n")
        report.text(f"ru_maxrss of one fresh process per model that sets up the model and runs "
                    f"its training steps (batch {args.batch}): Halo's `bench_models "
                    f"--benchmark_filter=^TrainStep/<model>...$`, PyTorch's child process. "
                    f"PyTorch's includes its libraries: "
                    f"{min(r['rss_libraries_mib'] for r in train.values()):.0f} MiB resident "
                    f"after `import torch, timm`, before any model."
                    + (" No Halo memory: its times came from --halo." if not halo_peaks else "")
                    + "\n")
        header = ["model", "PyTorch"]
        mem_kernels = sorted({k for (_, k) in halo_peaks}) or [""]
        for k in mem_kernels:
            header += [kernel_label(k), ratio_label(k, len(mem_kernels))]
        rows = []
        for name in args.models:
            t = train[name]["peak_mib"]
            row = [name, fmt(t, 0)]
            for k in mem_kernels:
                h = halo_peaks.get((name, k))
                row += [fmt(h, 0), fmt(ratio(h, t))]
            rows.append(row)
        report.table(header, rows)

    # 4. Per layer.
    profile = None
    if args.profile == "auto" and cpu:
        profile = max(ratios, key=ratios.get) if ratios else args.models[0]
    elif args.profile in MODELS and cpu:
        profile = args.profile
    profile_data = None
    if profile:
        model_tool = find_binary(args.halo_bin, "apps", "model_tool")
        if not model_tool:
            sys.exit(f"pytorch_step: no model_tool under {args.halo_bin} for --profile")
        print(f"profiling {profile} (Halo, then PyTorch)", file=sys.stderr, flush=True)
        halo_rows, halo_fwd, halo_step = halo_profile(model_tool, profile, args.batch,
                                                      args.size, args.threads,
                                                      args.profile_repeats)
        torch_prof = run_python_child("child-profile", profile, args, env)
        profile_tables(report, profile, halo_rows, halo_fwd, halo_step, torch_prof, args.batch,
                       args.size, args.threads, args.profile_repeats)
        profile_data = {"model": profile, "halo": halo_rows, "halo_forward_ms": halo_fwd,
                        "halo_step_ms": halo_step, "pytorch": torch_prof}

    print(report.plain())
    if args.output:
        with open(args.output, "w") as f:
            f.write(report.markdown() + "\n")
        print(f"\nmarkdown written to {args.output}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"pytorch_train": train, "pytorch_eval": evals,
                       "halo": {"/".join(k): v for k, v in halo.items()},
                       "halo_peak_mib": {"/".join(k): v for k, v in halo_peaks.items()},
                       "profile": profile_data}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
