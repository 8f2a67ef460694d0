#!/usr/bin/python3
# Golden values from PyTorch for the engine's differentiable ops and for Adam (DESIGN.md rule 3):
# writes tests/fixtures/ops_golden.h5 and tests/fixtures/adam_golden.h5, read by
# tests/engine/test_golden_ops.cpp and tests/engine/test_golden_adam.cpp. The tests never run PyTorch.
#
# Run from anywhere, with Debian's interpreter (it has torch, numpy and h5py):
#     /usr/bin/python3 tools/make_fixtures.py
# The output is deterministic (fixed seeds; values drawn in float64 on the CPU, then cast to
# float32), so re-running it on the same torch version gives the same files.
#
# ops_golden.h5: one group per case. Datasets (all float32):
#   inputs and parameters (x, w, b, gamma, beta, a, s, pred, target, ...), the forward output y,
#   a random upstream gradient dy (the loss is sum(y * dy), so dL/dy = dy), and the gradient of
#   every input and parameter, named "d" + its name (dx, dw, db, dgamma, ...). Batch norm in
#   training mode also stores running_mean / running_var before the step and
#   running_mean_after / running_var_after.
#   Attributes give the op ("op") and its settings (stride, padding, groups, kernel, momentum,
#   eps, training, has_bias).
# adam_golden.h5: one group per configuration with attributes lr, beta1, beta2, eps,
#   weight_decay, decoupled (0/1), steps, params (the parameter names, comma separated); for each
#   parameter p: p/init, p/grad_<t> (absent when that parameter has no gradient at step t),
#   p/after_<t> for t = 1..steps, and the final optimizer state p/exp_avg, p/exp_avg_sq and the
#   attribute p.step (steps actually taken).
import os

import h5py
import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures")

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)  # the same summation order on every machine


def rand(gen, *shape, scale=1.0, offset=0.0):
    """Normal(offset, scale) drawn in float64, returned as a float32 tensor."""
    return (torch.randn(tuple(shape), generator=gen, dtype=torch.float64) * scale + offset).float()


def uniform(gen, *shape, lo=0.0, hi=1.0):
    return (torch.rand(tuple(shape), generator=gen, dtype=torch.float64) * (hi - lo) + lo).float()


def f32(t):
    return t.detach().cpu().to(torch.float32).numpy()


def write_case(h5, name, op, attrs, inputs, fn, extra=None):
    """Runs fn(**inputs) with every input requiring grad, backpropagates sum(y * dy) and stores
    inputs, y, dy and each gradient under group `name`. `inputs` maps name -> (tensor, needs_grad).

    Inputs and dy are float32 values; the op runs in float64 on them and the results are rounded
    to float32 once, so the stored values are the exact answers for the stored inputs (to within
    float32 rounding) and a test's whole error budget measures Halo's float32 arithmetic, not
    PyTorch's."""
    leaves = {}
    for key, (t, grad) in inputs.items():
        leaf = t.clone().detach().double()  # exact: every input is a float32 value
        if grad:
            leaf.requires_grad_(True)
        leaves[key] = leaf
    y = fn(**leaves)
    gen = torch.Generator().manual_seed(hash_name(name))
    dy = rand(gen, *y.shape)
    (y * dy.double()).sum().backward()

    g = h5.create_group(name)
    g.attrs["op"] = op
    g.attrs["reference_precision"] = "float64"
    for k, v in attrs.items():
        g.attrs[k] = v
    for key, (t, grad) in inputs.items():
        g.create_dataset(key, data=f32(t))
        if grad:
            g.create_dataset("d" + key, data=f32(leaves[key].grad))
    g.create_dataset("y", data=f32(y))
    g.create_dataset("dy", data=f32(dy))
    for key, t in (extra or {}).items():
        g.create_dataset(key, data=f32(t))
    return leaves


def hash_name(name):
    # A stable per-case seed (Python's hash() is salted per process).
    return sum((i + 1) * ord(c) for i, c in enumerate(name)) + 12345


def conv_case(h5, name, gen, n, cin, h, w, cout, k, stride, padding, groups, bias, xscale=1.0):
    fan_in = cin // groups * k * k
    inputs = {
        "x": (rand(gen, n, cin, h, w, scale=xscale), True),
        "w": (rand(gen, cout, cin // groups, k, k, scale=1.0 / np.sqrt(fan_in)), True),
    }
    if bias:
        inputs["b"] = (rand(gen, cout, scale=0.5), True)

    def fn(x, w, b=None):
        return F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)

    write_case(h5, name, "conv2d",
               {"stride": stride, "padding": padding, "groups": groups, "has_bias": int(bias)},
               inputs, fn)


def make_ops(path):
    gen = torch.Generator().manual_seed(20240607)
    with h5py.File(path, "w") as h5:
        h5.attrs["torch_version"] = str(torch.__version__)
        h5.attrs["generator"] = "tools/make_fixtures.py"

        # ---- conv2d -----------------------------------------------------------------------
        # name, N, C_in, H, W, C_out, k, stride, padding, groups, bias
        conv_case(h5, "conv2d_3x3_bias", gen, 2, 3, 6, 6, 4, 3, 1, 1, 1, True)
        conv_case(h5, "conv2d_stride2_nobias", gen, 2, 4, 8, 8, 6, 3, 2, 1, 1, False)
        conv_case(h5, "conv2d_stem", gen, 2, 1, 16, 16, 8, 7, 2, 3, 1, False)        # ResNet stem
        conv_case(h5, "conv2d_proj1x1", gen, 2, 4, 8, 8, 8, 1, 2, 0, 1, False)       # downsample
        conv_case(h5, "conv2d_grouped", gen, 2, 4, 6, 6, 6, 3, 1, 1, 2, True)
        conv_case(h5, "conv2d_depthwise", gen, 2, 8, 9, 9, 8, 7, 1, 3, 8, True)      # ConvNeXt dw
        conv_case(h5, "conv2d_patchify", gen, 2, 1, 16, 16, 8, 4, 4, 0, 1, True)     # ConvNeXt stem
        conv_case(h5, "conv2d_odd", gen, 2, 3, 9, 7, 5, 3, 2, 1, 1, True)            # 9x7 -> 5x4
        conv_case(h5, "conv2d_odd_nopad", gen, 1, 2, 9, 7, 3, 3, 1, 0, 1, True)      # 9x7 -> 7x5

        # ---- batch_norm2d -------------------------------------------------------------------
        # The second case has a large mean (30) next to a small spread (0.5): statistics taken
        # as E[x^2] - E[x]^2 in float32 would lose most of their digits there.
        for name, training, momentum, eps, offset, scale in (
                ("batch_norm2d_train", True, 0.1, 1e-5, 1.5, 2.0),
                ("batch_norm2d_train_m03", True, 0.3, 1e-3, 30.0, 0.5),
                ("batch_norm2d_eval", False, 0.1, 1e-5, 1.5, 2.0)):
            c = 3
            x = rand(gen, 4, c, 5, 5, scale=scale, offset=offset)
            rm0 = rand(gen, c, scale=0.5)
            rv0 = uniform(gen, c, lo=0.5, hi=2.0)
            rm, rv = rm0.double(), rv0.double()
            inputs = {"x": (x, True), "gamma": (rand(gen, c, scale=0.5, offset=1.0), True),
                      "beta": (rand(gen, c, scale=0.5), True),
                      "running_mean": (rm0, False), "running_var": (rv0, False)}

            def fn(x, gamma, beta, running_mean, running_var, training=training, momentum=momentum,
                   eps=eps, rm=rm, rv=rv):
                # F.batch_norm updates rm and rv in place (unbiased variance for running_var).
                return F.batch_norm(x, rm, rv, gamma, beta, training=training, momentum=momentum,
                                    eps=eps)

            write_case(h5, name, "batch_norm2d",
                       {"training": int(training), "momentum": momentum, "eps": eps},
                       inputs, fn, extra={"running_mean_after": rm, "running_var_after": rv})

        # nn.BatchNorm2d module in training mode: the op's running statistics plus the module's
        # num_batches_tracked counter, after two forward passes; then eval mode on x1.
        c = 4
        bn = torch.nn.BatchNorm2d(c).double()  # float64 reference, as write_case
        with torch.no_grad():
            bn.weight.copy_(rand(gen, c, scale=0.5, offset=1.0))
            bn.bias.copy_(rand(gen, c, scale=0.5))
        bn.train()
        x1 = rand(gen, 3, c, 4, 4, scale=1.5, offset=-0.5)
        x2 = rand(gen, 3, c, 4, 4, scale=0.7, offset=2.0)
        g = h5.create_group("batch_norm2d_module")
        g.attrs["op"] = "nn.BatchNorm2d"
        g.attrs["eps"] = bn.eps
        g.attrs["momentum"] = bn.momentum
        g.create_dataset("weight", data=f32(bn.weight))
        g.create_dataset("bias", data=f32(bn.bias))
        g.create_dataset("x1", data=f32(x1))
        g.create_dataset("x2", data=f32(x2))
        with torch.no_grad():
            y1 = bn(x1.double())
            y2 = bn(x2.double())
        g.create_dataset("y1", data=f32(y1))
        g.create_dataset("y2", data=f32(y2))
        g.create_dataset("running_mean", data=f32(bn.running_mean))
        g.create_dataset("running_var", data=f32(bn.running_var))
        g.attrs["num_batches_tracked"] = int(bn.num_batches_tracked.item())
        bn.eval()
        with torch.no_grad():
            y3 = bn(x1.double())
        g.create_dataset("y_eval", data=f32(y3))

        # ---- layer_norm2d: timm's LayerNorm2d (permute to NHWC, layer norm over C, back) ---
        # The offset case (mean 50, spread 0.5) checks numerically careful statistics, as above.
        for name, shape, scale, offset in (("layer_norm2d", (2, 6, 4, 5), 1.0, 0.0),
                                           ("layer_norm2d_offset", (2, 8, 3, 3), 0.5, 50.0)):
            c = shape[1]
            inputs = {"x": (rand(gen, *shape, scale=scale, offset=offset), True),
                      "gamma": (rand(gen, c, scale=0.5, offset=1.0), True),
                      "beta": (rand(gen, c, scale=0.5), True)}

            def fn(x, gamma, beta, c=c):
                return F.layer_norm(x.permute(0, 2, 3, 1), (c,), gamma, beta, 1e-6).permute(0, 3, 1, 2)

            write_case(h5, name, "layer_norm2d", {"eps": 1e-6}, inputs, fn)

        # ---- activations ------------------------------------------------------------------
        write_case(h5, "gelu", "gelu", {}, {"x": (rand(gen, 2, 3, 4, 5, scale=2.5), True)},
                   lambda x: F.gelu(x))  # approximate='none': the erf form
        # No exact zeros in x (a draw is never exactly 0), so relu's derivative is unambiguous.
        write_case(h5, "relu", "relu", {}, {"x": (rand(gen, 2, 3, 4, 5), True)}, lambda x: F.relu(x))

        # ---- elementwise --------------------------------------------------------------------
        write_case(h5, "add", "add", {},
                   {"a": (rand(gen, 2, 3, 4, 5), True), "b": (rand(gen, 2, 3, 4, 5), True)},
                   lambda a, b: a + b)
        write_case(h5, "mul", "mul", {},
                   {"a": (rand(gen, 2, 3, 4, 5), True), "b": (rand(gen, 2, 3, 4, 5), True)},
                   lambda a, b: a * b)
        write_case(h5, "mul_channel", "mul_channel", {},
                   {"x": (rand(gen, 2, 5, 3, 4), True), "s": (rand(gen, 5), True)},
                   lambda x, s: x * s.view(1, -1, 1, 1))

        # ---- pooling -------------------------------------------------------------------------
        for name, hw in (("max_pool2d_odd", (9, 9)), ("max_pool2d_even", (8, 8)),
                         ("max_pool2d_rect", (7, 10))):
            write_case(h5, name, "max_pool2d", {"kernel": 3, "stride": 2, "padding": 1},
                       {"x": (rand(gen, 2, 3, *hw), True)},
                       lambda x: F.max_pool2d(x, 3, 2, 1))
        write_case(h5, "global_avg_pool2d", "global_avg_pool2d", {},
                   {"x": (rand(gen, 2, 4, 5, 6, offset=0.3), True)},
                   lambda x: x.mean(dim=(2, 3), keepdim=True))

        # ---- linear --------------------------------------------------------------------------
        write_case(h5, "linear_bias", "linear", {"has_bias": 1},
                   {"x": (rand(gen, 4, 10), True), "w": (rand(gen, 3, 10, scale=0.3), True),
                    "b": (rand(gen, 3), True)},
                   lambda x, w, b: F.linear(x, w, b))
        write_case(h5, "linear_nobias", "linear", {"has_bias": 0},
                   {"x": (rand(gen, 5, 7), True), "w": (rand(gen, 1, 7, scale=0.3), True)},
                   lambda x, w: F.linear(x, w))

        # ---- mse_loss (mean); the target is a constant, so there is no dtarget -------------
        write_case(h5, "mse_loss", "mse_loss", {},
                   {"pred": (rand(gen, 8, 1, scale=0.3, offset=0.5), True),
                    "target": (uniform(gen, 8, 1), False)},
                   lambda pred, target: F.mse_loss(pred, target, reduction="mean"))


def make_adam(path):
    gen = torch.Generator().manual_seed(777)
    steps = 5
    shapes = {"p0": (3, 4), "p1": (5,), "p2": (2, 2)}
    # Step t (1-based) at which p2 has no gradient (grad set to None: torch skips it and its step
    # count does not advance).
    p2_absent = {2, 4}
    configs = (
        ("adam_default", torch.optim.Adam, dict(lr=1e-3), False),
        ("adam_lr_betas", torch.optim.Adam, dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6), False),
        ("adam_weight_decay", torch.optim.Adam, dict(lr=0.01, weight_decay=0.1), False),
        ("adamw", torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1), True),
    )
    init = {k: rand(gen, *s) for k, s in shapes.items()}
    grads = {k: [rand(gen, *s, scale=0.5 + t) for t in range(steps)] for k, s in shapes.items()}
    with h5py.File(path, "w") as h5:
        h5.attrs["torch_version"] = str(torch.__version__)
        h5.attrs["generator"] = "tools/make_fixtures.py"
        for name, cls, kwargs, decoupled in configs:
            params = {k: torch.nn.Parameter(v.clone()) for k, v in init.items()}
            opt = cls(list(params.values()), **kwargs)
            d = opt.defaults
            g = h5.create_group(name)
            g.attrs["lr"] = d["lr"]
            g.attrs["beta1"] = d["betas"][0]
            g.attrs["beta2"] = d["betas"][1]
            g.attrs["eps"] = d["eps"]
            g.attrs["weight_decay"] = d["weight_decay"]
            g.attrs["decoupled"] = int(decoupled)
            g.attrs["steps"] = steps
            g.attrs["params"] = ",".join(params)
            for k, p in params.items():
                g.create_dataset(f"{k}/init", data=f32(p))
            for t in range(1, steps + 1):
                opt.zero_grad(set_to_none=True)
                for k, p in params.items():
                    if k == "p2" and t in p2_absent:
                        continue
                    p.grad = grads[k][t - 1].clone()
                    g.create_dataset(f"{k}/grad_{t}", data=f32(p.grad))
                opt.step()
                for k, p in params.items():
                    g.create_dataset(f"{k}/after_{t}", data=f32(p))
            for k, p in params.items():
                st = opt.state[p]
                g.create_dataset(f"{k}/exp_avg", data=f32(st["exp_avg"]))
                g.create_dataset(f"{k}/exp_avg_sq", data=f32(st["exp_avg_sq"]))
                g[k].attrs["step"] = int(st["step"].item() if torch.is_tensor(st["step"]) else st["step"])


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for fname, fn in (("ops_golden.h5", make_ops), ("adam_golden.h5", make_adam)):
        path = os.path.join(OUT_DIR, fname)
        tmp = path + ".tmp"
        fn(tmp)
        os.replace(tmp, path)
        print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
