#!/usr/bin/env python3
"""Halo <-> PyTorch Image Models (timm) interop through the HDF5 state-dict layout.

Subcommands (MODEL is resnet18, resnet26 or convnext_pico; timm.create_model(MODEL,
pretrained=False, in_chans=1, num_classes=1)):

  keys    --model M                     print timm's state-dict keys as "key [shape] dtype kind"
  export  --model M [M ...] --out W.h5 [--io IO.h5] [--perturb | --reference] [--seed S]
                                        timm's weights to HDF5; with --io also a fixed input batch
                                        ("input") and timm's eval output for it ("output")
  check   --model M [M ...] --weights W.h5 --input IN.h5 --halo-output OUT.h5 [--tol 1e-5]
                                        load Halo-written weights into timm strictly, run the input
                                        in eval mode, print the max abs / relative difference to
                                        Halo's output; exit 1 above the tolerance. With several
                                        models, '{model}' in a path is replaced by each name
  fixture --model M --out tests/fixtures/model_M.h5
                                        the committed test fixture (see below)

Reference values (--reference, and every fixture). Both sides compute the same deterministic value
for every state-dict entry, so fixtures store no weights. Must stay identical to
models/registry.cpp:
  u(key, i), element i (flat, row-major) of the tensor named key, uniform in (-1, 1):
    h = FNV-1a 64 of the key's bytes (offset 0xcbf29ce484222325, prime 0x100000001b3)
    x = h + (i + 1) * 0x9E3779B97F4A7C15                        (mod 2^64)
    z = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB; z ^= z >> 31
    u = (2 * (z >> 40) + 1 - 2^24) / 2^24
  value (float64, rounded once to float32):
    dim >= 2 (conv / linear weight)  u * sqrt(3 / fan_in), fan_in = numel / shape[0]
    *.running_mean 0.2 u;  *.running_var 1 + 0.5 u;  *gamma 0.5 + 0.4 u
    other 1-D *.weight 1 + 0.3 u;  other 1-D (biases) 0.2 u;  num_batches_tracked 0
  --perturb sets only the 1-D entries (norms, biases, running stats, layer scale) and keeps the
  model's random conv/linear weights: timm's own init zeroes the last BN of every ResNet branch
  and sets ConvNeXt's layer scale to 1e-6, which would make an output check blind.

Fixture layout (one file per model; cases C: "s64" = batch 2 of 1x64x64, "s37" = batch 2 of
1x37x37 (odd sizes at every stride), "s150" = batch 1 of 1x150x150; the reference is computed by
timm in float64 from the float32 reference values, and stored as float32):
  C/input [N,1,H,W], C/target [N,1]
  C/eval_output [N,1]                   eval mode, no grad
  C/train_output [N,1], C/loss []       training mode (batch statistics), loss = MSE(train_output, target)
  C/bn/<module>.running_mean / .running_var    (ResNets) after the training-mode forward
  C/kink_margin []                      smallest distance of a ReLU input / max-pool top-2 gap from
                                        its kink in the training-mode forward (-1: no kinks)
  C/grad_norm [P], C/grad_probe [P]     for every parameter, in named_parameters() order:
                                        ||g||_2 and sum_i g_i * u(key + "#probe", i)
  C/grad/<key>                          whole gradients of a few parameters
Gradients are stored only where float32 can reproduce them: for the ResNets the input seed is
searched until no ReLU input lies within --margin of zero (see kink_margin); at 1x150x150 a ResNet
has ~1e6 ReLU inputs, some always within float32 rounding of zero (timm's own float32 gradients
differ from its float64 ones by up to 9e-2 there), so s150 stores gradients for ConvNeXt only.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import state_dict_io  # noqa: E402

MODELS = ("resnet18", "resnet26", "convnext_pico")
MASK = (1 << 64) - 1

# Parameters whose whole gradient goes into a fixture (the others are checked by norm and probe),
# and the BatchNorms whose running statistics are stored after the training-mode forward.
FULL_GRADS = {
    "resnet18": ["conv1.weight", "bn1.weight", "layer2.0.downsample.0.weight", "layer3.1.bn2.weight",
                 "layer4.0.bn1.bias", "fc.weight", "fc.bias"],
    "resnet26": ["conv1.weight", "layer1.0.conv1.weight", "layer1.0.downsample.0.weight",
                 "layer3.1.bn3.weight", "layer4.1.bn2.bias", "fc.weight", "fc.bias"],
    "convnext_pico": ["stem.0.weight", "stem.0.bias", "stages.1.downsample.0.weight",
                      "stages.2.blocks.3.gamma", "stages.2.blocks.3.conv_dw.weight",
                      "stages.3.blocks.1.norm.weight", "head.norm.weight", "head.fc.weight",
                      "head.fc.bias"],
}
BN_STATS = {
    "resnet18": ["bn1", "layer4.1.bn2"],
    "resnet26": ["bn1", "layer4.1.bn3"],
    "convnext_pico": [],
}
# case -> (batch, size, first input seed, gradients also for ReLU networks)
CASES = {"s64": (2, 64, 1001, True), "s37": (2, 37, 3001, True), "s150": (1, 150, 1002, False)}


# ---- reference values ------------------------------------------------------------------------
def fnv1a64(s):
    h = 0xcbf29ce484222325
    for b in s.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001b3) & MASK
    return h


def reference_uniform(key, n):
    """u(key, i) for i = 0..n-1 as float64 (exact: odd multiples of 2^-24)."""
    with np.errstate(over="ignore"):
        i = np.arange(1, n + 1, dtype=np.uint64)
        z = np.uint64(fnv1a64(key)) + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    two24 = 16777216.0
    return (2.0 * (z >> np.uint64(40)).astype(np.float64) + 1.0 - two24) / two24


def reference_array(key, shape):
    n = int(np.prod(shape)) if len(shape) else 1
    u = reference_uniform(key, n)
    offset, scale = 0.0, 1.0
    if len(shape) >= 2:
        scale = math.sqrt(3.0 / (n // shape[0]))
    elif key.endswith("running_mean"):
        scale = 0.2
    elif key.endswith("running_var"):
        offset, scale = 1.0, 0.5
    elif key.endswith("gamma"):
        offset, scale = 0.5, 0.4
    elif key.endswith("weight"):
        offset, scale = 1.0, 0.3
    else:
        scale = 0.2
    return (offset + scale * u).astype(np.float32).reshape(shape)


def set_reference_values(model, only_1d=False):
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if key.endswith("num_batches_tracked"):
                if not only_1d:
                    t.zero_()
                continue
            if only_1d and t.dim() != 1:
                continue
            t.copy_(torch.from_numpy(reference_array(key, tuple(t.shape))))


# ---- helpers -----------------------------------------------------------------------------------
def create(name):
    import timm
    if name not in MODELS:
        raise SystemExit(f"unknown model '{name}'; valid names: {', '.join(MODELS)}")
    return timm.create_model(name, pretrained=False, in_chans=1, num_classes=1)


def fixed_input(batch, size, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 1, size, size, generator=g)


def rel_diff(a, b):
    """max |a - b| / max |b| (relative to the reference's scale), and max |a - b|."""
    a = a.double()
    b = b.double()
    abs_d = (a - b).abs().max().item()
    scale = b.abs().max().item()
    return abs_d / max(scale, 1e-30), abs_d


# ---- subcommands -------------------------------------------------------------------------------
def cmd_keys(args):
    model = create(args.model)
    params = dict(model.named_parameters())
    for k, v in model.state_dict().items():
        kind = "param" if k in params else "buffer"
        print(f"{k}\t{list(v.shape)}\t{str(v.dtype).replace('torch.', '')}\t{kind}")


def cmd_export(args):
    for name in args.model:
        torch.manual_seed(args.seed)
        model = create(name)
        if args.reference:
            set_reference_values(model)
        elif args.perturb:
            set_reference_values(model, only_1d=True)
        out = args.out.format(model=name)
        state_dict_io.save_state_dict(model.state_dict(), out)
        print(f"{name}: state dict ({len(model.state_dict())} keys) written to {out}")
        if args.io:
            io = args.io.format(model=name)
            x = fixed_input(args.batch, args.size, args.seed + 1)
            model.eval()
            with torch.no_grad():
                y = model(x) if args.fp32 else model.double()(x.double()).float()
            state_dict_io.write_tensors(io, {"input": x, "output": y})
            print(f"{name}: input {list(x.shape)} and timm's eval output {list(y.shape)} written to {io}")


def cmd_check(args):
    failures = 0
    for name in args.model:
        model = create(name)
        weights = args.weights.format(model=name)
        state_dict_io.load_into(model, weights, strict=True, group=args.weights_group)
        x = state_dict_io.read_tensor(args.input.format(model=name), args.dataset)
        halo = state_dict_io.read_tensor(args.halo_output.format(model=name), args.output_dataset)
        model.eval()
        with torch.no_grad():
            ref = model(x) if args.fp32 else model.double()(x.double())
        if tuple(ref.shape) != tuple(halo.shape):
            print(f"{name}: shape mismatch: timm {list(ref.shape)}, Halo {list(halo.shape)}")
            failures += 1
            continue
        rel, abs_d = rel_diff(halo, ref)
        ok = rel <= args.tol
        failures += not ok
        print(f"{name}: input {list(x.shape)}, output {list(ref.shape)}; max |halo - timm| = "
              f"{abs_d:.3e}, relative to max |timm| = {rel:.3e} (tolerance {args.tol:g}): "
              f"{'OK' if ok else 'FAIL'}")
    return 1 if failures else 0


def kink_margin(model, x):
    """How far a training-mode forward of `x` stays from the kinks of ResNet's piecewise-linear
    layers: the smallest |input| of any ReLU, and the smallest gap between the largest and the
    second-largest value of any max-pool window whose maximum is positive (windows of zeros route
    their gradient into ReLUs that block it anyway). Where this is below the float32 rounding of
    the activations, a float32 run can take the other side of a kink and its gradients then differ
    from the float64 reference by ~1e-2 (measured: timm float32 vs timm float64 on resnet18 at
    1x150x150 differs by 9e-2), which says nothing about the implementation. The model's state is
    restored afterwards."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    worst = [math.inf]

    def relu_hook(mod, inp):
        worst[0] = min(worst[0], inp[0].detach().abs().min().item())

    def pool_hook(mod, inp):
        v = inp[0].detach()
        n, c = v.shape[:2]
        padded = F.pad(v, [mod.padding] * 4, value=-math.inf)
        cols = F.unfold(padded, mod.kernel_size, stride=mod.stride).reshape(n, c, mod.kernel_size ** 2, -1)
        top = cols.topk(2, dim=2).values
        gap = top[:, :, 0] - top[:, :, 1]
        gap = gap[top[:, :, 0] > 0]
        if gap.numel():
            worst[0] = min(worst[0], gap.min().item())

    hooks = []
    for mod in model.modules():
        if isinstance(mod, torch.nn.ReLU):
            hooks.append(mod.register_forward_pre_hook(relu_hook))
        elif isinstance(mod, torch.nn.MaxPool2d):
            hooks.append(mod.register_forward_pre_hook(pool_hook))
    model.train()
    with torch.no_grad():
        model(x.double())
    for h in hooks:
        h.remove()
    model.load_state_dict(state)
    return worst[0]


def cmd_fixture(args):
    model = create(args.model)
    set_reference_values(model)
    model = model.double()
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    names = [k for k, _ in model.named_parameters()]
    smooth = not any(isinstance(m, (torch.nn.ReLU, torch.nn.MaxPool2d)) for m in model.modules())
    out = {}
    for case, (batch, size, seed, grads) in CASES.items():
        model.load_state_dict(base_state)
        # Gradients are compared only where they are well defined at float32 precision: for a
        # ReLU network the input is chosen (from seeds seed, seed+1, ...) so that no activation
        # lies within args.margin of a kink; at 1x150x150 the ~1e6 ReLU inputs of a ResNet
        # make that impossible, so that case checks outputs and BN statistics only.
        grads = grads or smooth
        margin = math.inf
        if grads and not smooth:
            best = None
            for k in range(args.tries):
                m = kink_margin(model, fixed_input(batch, size, seed + k))
                if best is None or m > best[0]:
                    best = (m, seed + k)
                if m >= args.margin:
                    break
            margin, seed = best
        x = fixed_input(batch, size, seed)
        if not smooth and not math.isfinite(margin):
            margin = kink_margin(model, x)  # for the record: why this case stores no gradients
        g = torch.Generator().manual_seed(seed + 500)
        target = torch.randn(batch, 1, generator=g)
        out[f"{case}/input"] = x
        out[f"{case}/target"] = target
        out[f"{case}/kink_margin"] = np.array(-1.0 if smooth else margin)
        model.eval()
        with torch.no_grad():
            out[f"{case}/eval_output"] = model(x.double())
        model.train()
        model.zero_grad(set_to_none=True)
        y = model(x.double())
        loss = F.mse_loss(y, target.double())
        loss.backward()
        out[f"{case}/train_output"] = y.detach()
        out[f"{case}/loss"] = loss.detach()
        params = dict(model.named_parameters())
        if grads:
            norms, probes = [], []
            for k in names:
                gk = params[k].grad.detach().reshape(-1).numpy()
                norms.append(float(np.sqrt(np.sum(gk * gk))))
                probes.append(float(np.dot(gk, reference_uniform(k + "#probe", gk.size))))
            out[f"{case}/grad_norm"] = np.array(norms)
            out[f"{case}/grad_probe"] = np.array(probes)
            for k in FULL_GRADS[args.model]:
                # Besides s64, only the small ones (stem, norms, head) to keep files small.
                if case == "s64" or params[k].numel() <= 4096:
                    out[f"{case}/grad/{k}"] = params[k].grad.detach().clone()
        sd = model.state_dict()
        for bn in BN_STATS[args.model]:
            # clone: the next case's load_state_dict() overwrites these tensors in place
            out[f"{case}/bn/{bn}.running_mean"] = sd[bn + ".running_mean"].clone()
            out[f"{case}/bn/{bn}.running_var"] = sd[bn + ".running_var"].clone()
        print(f"{args.model} {case}: input seed {seed}, kink margin {margin:.2e}, gradients "
              f"{'stored' if grads else 'not stored'}; eval output "
              f"{[round(v, 6) for v in out[f'{case}/eval_output'].flatten().tolist()]}, "
              f"loss {loss.item():.6f}")
    state_dict_io.write_tensors(args.out, out)
    print(f"fixture written to {args.out} ({os.path.getsize(args.out)} bytes)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    k = sub.add_parser("keys", help="print timm's state-dict keys")
    k.add_argument("--model", required=True, choices=MODELS)

    e = sub.add_parser("export", help="timm weights (and an input/output pair) to HDF5")
    e.add_argument("--model", required=True, choices=MODELS, nargs="+")
    e.add_argument("--out", required=True,
                   help="state dict file to write ('{model}' is replaced by the model name)")
    e.add_argument("--io", help="also write a fixed input batch and timm's eval output here "
                                "('{model}' is replaced)")
    mode = e.add_mutually_exclusive_group()
    mode.add_argument("--perturb", action="store_true",
                      help="set 1-D tensors (norms, biases, running stats, layer scale) to the "
                           "reference values")
    mode.add_argument("--reference", action="store_true", help="set every tensor to the reference values")
    e.add_argument("--seed", type=int, default=0, help="torch seed for timm's init and the input")
    e.add_argument("--batch", type=int, default=2)
    e.add_argument("--size", type=int, default=64)
    e.add_argument("--fp32", action="store_true", help="run timm in float32 (default float64)")

    c = sub.add_parser("check", help="Halo-written weights into timm; compare outputs")
    c.add_argument("--model", required=True, choices=MODELS, nargs="+")
    c.add_argument("--weights", required=True, help="Halo-written state dict ('{model}' is replaced "
                                                    "by the model name, for several models)")
    c.add_argument("--weights-group", help="read the state dict from this group of the weights file "
                                           "(e.g. 'model' in a training checkpoint)")
    c.add_argument("--input", required=True, help="HDF5 file with the input ('{model}' is replaced)")
    c.add_argument("--dataset", default="input")
    c.add_argument("--halo-output", required=True, help="HDF5 file with Halo's output ('{model}' "
                                                        "is replaced)")
    c.add_argument("--output-dataset", default="output")
    c.add_argument("--tol", type=float, default=1e-5, help="max relative difference")
    c.add_argument("--fp32", action="store_true", help="run timm in float32 (default float64)")

    f = sub.add_parser("fixture", help="write a test fixture")
    f.add_argument("--model", required=True, choices=MODELS)
    f.add_argument("--out", required=True)
    f.add_argument("--margin", type=float, default=2e-5,
                   help="wanted distance of every ReLU input / max-pool gap from its kink")
    f.add_argument("--tries", type=int, default=64, help="input seeds to try for that margin")

    args = p.parse_args(argv)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    return {"keys": cmd_keys, "export": cmd_export, "check": cmd_check,
            "fixture": cmd_fixture}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
