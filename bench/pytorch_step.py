#!/usr/bin/env python3
"""Times one training step (forward, MSE loss, backward, Adam) of timm's resnet18 / resnet26 /
convnext_pico in PyTorch on the CPU: batch 16 of 1x150x150, torch.set_num_threads(2), the same
step bench/bench_models.cpp times in Halo. Each model runs in its own fresh process (warm-up steps,
then the median of the timed steps); prints ms per image. With --halo BENCH.json (Halo's
`bench_models --benchmark_format=json` output) it also prints Halo's numbers and the ratio, for
TrainStep/<model>/<--halo-cpu-kernels> (onednn, PyTorch's own CPU convolution library, by default;
halo for Halo's own kernels).

    build/bench/bench_models --benchmark_filter=TrainStep --benchmark_format=json > bench.json
    /usr/bin/python3 bench/pytorch_step.py --halo bench.json

On a GPU (batch 64, TF32 as PyTorch's defaults; compares with Halo's GpuTrainStep/<model>/cudnn):
    build/bench/bench_models --benchmark_filter=GpuTrainStep --benchmark_format=json > gpu.json
    python3 bench/pytorch_step.py --device cuda --batch 64 --halo gpu.json

By default the child processes run with glibc's malloc tuned to keep freed memory
(MALLOC_MMAP_THRESHOLD_ etc.): without it PyTorch's step time on these VMs varies by up to 2x
between processes from page faults (see ../shared/reference/architectures.md, "Timing and
memory"); --default-malloc turns that off.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

MODELS = ("resnet18", "resnet26", "convnext_pico")
TUNED_MALLOC = {
    "MALLOC_MMAP_THRESHOLD_": "33554432",
    "MALLOC_TRIM_THRESHOLD_": "17179869184",
    "MALLOC_TOP_PAD_": "1073741824",
}


def time_one(name, batch, size, threads, warmup, iters, device="cpu"):
    """Runs in the child process: returns (median, min, max) ms per image and the CPU use."""
    import torch
    import torch.nn.functional as F
    import timm

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, in_chans=1, num_classes=1).to(device)
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
        return loss

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
            "max": max(times), "cpu_util": cpu_util, "torch": torch.__version__,
            "timm": timm.__version__}


def halo_numbers(path, prefix="TrainStep/", suffix=""):
    """ms per image of <prefix><model><suffix> from a Google Benchmark JSON file."""
    with open(path) as f:
        data = json.load(f)
    out = {}
    for b in data.get("benchmarks", []):
        name = b.get("name", "")
        if (not name.startswith(prefix) or not name.endswith(suffix) or "error_occurred" in b
                or b.get("run_type") == "aggregate"):
            continue
        model = name.split("/")[1]
        out[model] = float(b["time_per_image"]) * 1000.0  # seconds per image in the JSON
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--halo-cpu-kernels", default="onednn", choices=("onednn", "halo"),
                   help="which of Halo's TrainStep/<model>/<kernels> numbers --halo compares")
    p.add_argument("--size", type=int, default=150)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--default-malloc", action="store_true", help="do not tune glibc malloc")
    p.add_argument("--halo", help="Halo's bench_models JSON output, for the ratio table")
    p.add_argument("--json", help="also write the PyTorch results here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.child:
        r = time_one(args.child, args.batch, args.size, args.threads, args.warmup, args.iters,
                     args.device)
        print(json.dumps(r))
        return 0

    env = dict(os.environ)
    if not args.default_malloc:
        env.update(TUNED_MALLOC)
    results = {}
    for name in args.models:
        cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "--batch", str(args.batch),
               "--size", str(args.size), "--threads", str(args.threads), "--warmup",
               str(args.warmup), "--iters", str(args.iters), "--device", args.device]
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        results[name] = json.loads(out.strip().splitlines()[-1])
        r = results[name]
        print(f"pytorch {name:14s} {r['median']:7.2f} ms/image (min {r['min']:.2f}, max "
              f"{r['max']:.2f}; cpu use {r['cpu_util']:.2f} cores)", flush=True)
    first = next(iter(results.values()))
    print(f"\nPyTorch {first['torch']} + timm {first['timm']}, batch {args.batch} of 1x{args.size}x"
          f"{args.size}, {args.threads} threads, {'default' if args.default_malloc else 'tuned'} "
          f"malloc, median of {args.iters} steps after {args.warmup} warm-up")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    if args.halo:
        halo = (halo_numbers(args.halo, "GpuTrainStep/", "/cudnn") if args.device == "cuda"
                else halo_numbers(args.halo, "TrainStep/", "/" + args.halo_cpu_kernels))
        print(f"\n{'model':14s} {'Halo ms/img':>12s} {'PyTorch ms/img':>15s} {'Halo/PyTorch':>13s}")
        for name in args.models:
            h = halo.get(name)
            t = results[name]["median"]
            if h is None:
                print(f"{name:14s} {'-':>12s} {t:15.2f} {'-':>13s}")
            else:
                print(f"{name:14s} {h:12.2f} {t:15.2f} {h / t:13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
