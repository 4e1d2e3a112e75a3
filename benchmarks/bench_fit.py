"""Benchmark: vaelib.fit against the canonical DataLoader training loop of the PyTorch VAE example.

Both train the same 784-400-20 MLP VAE on MNIST in this one process: batch 128, Adam with lr 1e-3, the same
number of epochs, the same initial weights, the Bernoulli negative ELBO (binary cross-entropy summed over pixels
plus the closed-form KL).

(a) canonical: the loop of pytorch/examples' ``vae/main.py`` (written out here): a torchvision MNIST dataset with
    the ``ToTensor`` transform, ``DataLoader(batch_size=128, shuffle=True)``, its own small model class, the summed
    loss, ``loss.item()`` every step. Its per-epoch test pass, logging and image saving are left out of the timing.
(b) ``vaelib.fit`` on ``vaelib.load_dataset("mnist")``, through the ``Trainer`` it wraps, one epoch per call.

The two loops alternate epoch by epoch (canonical, vaelib, canonical, ...) so that both see the same machine; the
table shows the median epoch.

Printed for each: seconds per epoch (training passes only; one-time setup is shown apart), the ratio, the test loss
(one-sample negative ELBO per test image in nats, computed by the same function for both, with the same noise),
and the achieved GFLOP/s against a matrix-multiply peak measured in this run.

FLOPs are counted analytically, for the matrix multiplications only: a Linear layer with fan-in i and fan-out o
costs 2*i*o FLOPs per example forward, 2*i*o for its weight gradient and 2*i*o for its input gradient, except the
first layer, whose input needs no gradient. For 784-400-(20, 20)-400-784 that is 3.28 MFLOP per example, 196.8
GFLOP per epoch of 60,000 images. Element-wise work (activations, losses, Adam) is not counted.

Run: ``make bench`` or ``python benchmarks/bench_fit.py [--epochs 3] [--root DIR] [--breakdown] [--bounds]``
(root default: $VAELIB_DATA). ``--bounds`` also times, at the benchmark's shapes, what no trainer can avoid: the
step's matrix products alone, Adam's update alone, and the fixed cost of one step (the same step on a tiny model),
and prints the share of the peak that an epoch could reach with nothing else.

Timings are only meaningful on an otherwise idle machine: with two OpenMP threads on two cores, any other busy
process slows both loops many times over.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

import vaelib
from vaelib import losses
from vaelib.data import data_root

LAYERS = [(784, 400), (400, 20), (400, 20), (20, 400), (400, 784)]


def flops_per_example() -> int:
    """Matmul FLOPs of one forward + backward pass per example (see the module docstring)."""
    forward = sum(2 * i * o for i, o in LAYERS)
    weight_grads = forward
    input_grads = forward - 2 * LAYERS[0][0] * LAYERS[0][1]
    return forward + weight_grads + input_grads


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """Best observed float32 GFLOP/s of an n x n by n x n matrix product (torch.mm, all threads)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


class ExampleVAE(nn.Module):
    """The model class of the PyTorch example: fc1 784->400, fc21/fc22 400->20, fc3 20->400, fc4 400->784."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h = F.relu(self.fc1(x))
        return self.fc21(h), self.fc22(h)

    def reparameterize(self, mu, logvar):
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def example_loss(recon, x, mu, logvar):
    """Binary cross-entropy summed over pixels and batch, plus the closed-form KL, as in the example."""
    bce = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


# Parameter names of the example's model and of vaelib.VAE(784, hidden=(400,), latent_dim=20).
NAME_MAP = {"fc1": "body.0", "fc21": "to_mu", "fc22": "to_logvar", "fc3": "decoder.0", "fc4": "decoder.2"}


def as_vaelib(example_state: dict) -> vaelib.VAE:
    """A vaelib.VAE holding the example model's weights (the two architectures are identical)."""
    model = vaelib.VAE(784, hidden=(400,), latent_dim=20)
    state = {}
    for name, tensor in example_state.items():
        layer, kind = name.split(".")
        state[f"{NAME_MAP[layer]}.{kind}"] = tensor.clone()
    model.load_state_dict(state)
    return model


@torch.no_grad()
def test_loss(model: vaelib.VAE, x: torch.Tensor, seed: int = 123) -> float:
    """One-sample negative ELBO per test image, in nats, with fixed noise (the same for every model)."""
    model.eval()
    torch.manual_seed(seed)
    total = sum(-losses.elbo(model, x[i:i + 1000]).sum().item() for i in range(0, len(x), 1000))
    return total / len(x)


class Canonical:
    """The example's setup and its ``train(epoch)`` loop (logging, test pass and image saving left out)."""

    def __init__(self, root: str, init: dict, device="cpu", limit: int | None = None):
        from torchvision import datasets, transforms

        self.dataset = datasets.MNIST(root, train=True, download=True, transform=transforms.ToTensor())
        if limit is not None:  # a quick smoke run on the first `limit` images
            self.dataset = torch.utils.data.Subset(self.dataset, range(limit))
        # On a GPU, as the example does with --accel: pinned host batches copied over each step.
        self.device = torch.device(device)
        self.loader = torch.utils.data.DataLoader(self.dataset, batch_size=128, shuffle=True,
                                                  pin_memory=self.device.type == "cuda")
        self.model = ExampleVAE().to(self.device)
        self.model.load_state_dict(init)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)

    def epoch(self) -> tuple[float, float]:
        """One training epoch; returns (seconds, average training loss per image)."""
        self.model.train()
        t = time.perf_counter()
        train_loss = 0.0
        for data, _ in self.loader:
            data = data.to(self.device)
            self.optimizer.zero_grad()
            recon, mu, logvar = self.model(data)
            loss = example_loss(recon, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            self.optimizer.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t, train_loss / len(self.dataset)


def _best_seconds(f, repeats: int, rounds: int = 7) -> float:
    """Best of ``rounds`` timings of ``repeats`` calls of f, per call."""
    for _ in range(10):
        f()
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(repeats):
            f()
        best = min(best, (time.perf_counter() - t) / repeats)
    return best


def step_products(batch: int = 128) -> tuple[float, int]:
    """Seconds and FLOPs of the matrix products of one training step, at their shapes and in the layouts autograd
    uses (forward addmm with the weight transposed; input and weight gradients), on random data."""
    g = torch.Generator().manual_seed(0)
    calls = []
    for layer, (i, o) in enumerate(LAYERS):
        x, w, b = torch.rand(batch, i, generator=g), torch.randn(o, i, generator=g), torch.randn(o, generator=g)
        grad = torch.randn(batch, o, generator=g)
        calls.append(lambda x=x, w=w, b=b: torch.addmm(b, x, w.t()))   # forward
        calls.append(lambda grad=grad, x=x: grad.t() @ x)               # weight gradient
        if layer > 0:                                                    # input gradient (not for the data)
            calls.append(lambda grad=grad, w=w: grad @ w)
    seconds = _best_seconds(lambda: [c() for c in calls], repeats=50)
    return seconds, flops_per_example() * batch


def adam_update() -> float:
    """Seconds of one fused Adam update of the benchmark model's 636,000 parameters (the trainer's optimiser)."""
    model = vaelib.VAE(784, hidden=(400,), latent_dim=20)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    return _best_seconds(optimizer.step, repeats=50)


def step_overhead() -> float:
    """Seconds of one training step of the trainer on a tiny VAE (8-8-2, batch 4): the same operations, autograd
    nodes and optimiser calls as the benchmark's step, with next to no arithmetic: its fixed cost."""
    torch.manual_seed(0)
    trainer = vaelib.Trainer(vaelib.VAE(8, hidden=(8,), latent_dim=2), device="cpu", verbose=False)
    x = torch.rand(4, 8)
    return _best_seconds(lambda: trainer._step(x, 1.0), repeats=200)


def print_bounds(peak: float, fit_seconds: float) -> None:
    """What an epoch of the benchmark costs at the least, part by part, and the share of the peak it allows."""
    steps = -(-60000 // 128)
    mm_s, mm_flops = step_products()
    adam_s, fixed_s = adam_update(), step_overhead()
    per_epoch = flops_per_example() * 60000 / 1e9
    print(f"\nbounds at these shapes (per epoch of {steps} steps; peak {peak:.0f} GFLOP/s):")
    print(f"  matrix products alone  {mm_s * steps:5.2f} s  ({mm_flops / mm_s / 1e9:.0f} GFLOP/s, "
          f"{100 * mm_flops / mm_s / 1e9 / peak:.0f} % of peak)")
    print(f"  fused Adam alone       {adam_s * steps:5.2f} s")
    print(f"  fixed cost of a step   {fixed_s * steps:5.2f} s  (the same step on a tiny model: Python, dispatch, "
          f"autograd, optimiser bookkeeping)")
    for label, seconds in [("products alone", mm_s), ("products + Adam", mm_s + adam_s),
                           ("products + Adam + fixed cost", mm_s + adam_s + fixed_s)]:
        print(f"  an epoch of {label:29s} {seconds * steps:5.2f} s -> at most "
              f"{100 * per_epoch / (seconds * steps) / peak:3.0f} % of peak")
    print(f"  vaelib.fit measured                      {fit_seconds:5.2f} s -> "
          f"{100 * per_epoch / fit_seconds / peak:3.0f} % of peak")


def dataloader_pass(root: str) -> float:
    """Seconds for one epoch of the canonical DataLoader with nothing else: its data-loading cost."""
    from torchvision import datasets, transforms

    dataset = datasets.MNIST(root, train=True, download=True, transform=transforms.ToTensor())
    loader = torch.utils.data.DataLoader(dataset, batch_size=128, shuffle=True)
    t = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--root", default=None, help="data folder in torchvision layout (default: $VAELIB_DATA)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time one pass of the canonical DataLoader alone (no model): its data-loading share")
    parser.add_argument("--bounds", action="store_true",
                        help="also time the step's matrix products alone, Adam alone and a step's fixed cost: the "
                             "least an epoch can take at these shapes")
    args = parser.parse_args()
    root = str(data_root(args.root))
    os.environ["VAELIB_DATA"] = root

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    peak = matmul_peak()
    print(f"matrix-multiply peak (2048^3 sgemm, best of 10): {peak:.1f} GFLOP/s (measured again at the end)")
    per_epoch = flops_per_example() * 60000 / 1e9
    print(f"matmul work: {flops_per_example() / 1e6:.2f} MFLOP per example, {per_epoch:.1f} GFLOP per epoch; "
          f"at this peak an epoch needs >= {per_epoch / peak:.2f} s\n")

    torch.manual_seed(0)
    init = {k: v.clone() for k, v in ExampleVAE().state_dict().items()}  # the same start for both
    x_test = vaelib.load_dataset("mnist", split="test")[0]

    t = time.perf_counter()
    canonical = Canonical(root, init)
    can_setup = time.perf_counter() - t
    t = time.perf_counter()
    train = vaelib.load_dataset("mnist")
    # vaelib.fit(model, train, epochs=E, ...) is Trainer(model, ...).fit(train, epochs=E); calling the Trainer one
    # epoch at a time lets the two loops alternate, so both see whatever else the machine is doing.
    trainer = vaelib.Trainer(as_vaelib(init), batch_size=128, lr=1e-3, device="cpu", seed=0, verbose=False)
    fit_setup = time.perf_counter() - t

    torch.manual_seed(1)
    can_s, fit_s, fit_calls = [], [], []
    for epoch in range(args.epochs):
        seconds, loss = canonical.epoch()
        can_s.append(seconds)
        print(f"  epoch {epoch + 1}  canonical: {seconds:6.2f} s (train loss {loss:.2f})", end="   ")
        t = time.perf_counter()
        history = trainer.fit(train, epochs=1)
        fit_calls.append(time.perf_counter() - t)
        fit_s.append(history.epoch_seconds[-1])
        print(f"vaelib: {fit_s[-1]:6.2f} s (train loss {history.train_loss[-1]:.2f})")
    peak = max(peak, matmul_peak())
    can_loss = test_loss(as_vaelib(canonical.model.state_dict()), x_test)
    fit_loss = test_loss(trainer.model, x_test)

    can_mean, fit_mean = statistics.median(can_s), statistics.median(fit_s)
    ratio = can_mean / fit_mean
    print(f"\nmatrix-multiply peak, best of before and after: {peak:.1f} GFLOP/s")
    rows = [("canonical loop", can_mean, can_loss, can_setup), ("vaelib.fit", fit_mean, fit_loss, fit_setup)]
    print(f"{'median of ' + str(args.epochs):16}{'s/epoch':>9}{'test -ELBO':>12}{'GFLOP/s':>9}{'% peak':>8}{'setup s':>9}")
    for name, s, loss, setup in rows:
        gflops = per_epoch / s
        print(f"{name:16}{s:9.2f}{loss:12.2f}{gflops:9.1f}{100 * gflops / peak:8.0f}{setup:9.2f}")
    print(f"\nspeed-up (canonical s/epoch / fit s/epoch): {ratio:.2f}x   "
          f"(counting fit's per-call data checks too: {can_mean / statistics.median(fit_calls):.2f}x)")
    print(f"test loss difference (fit - canonical): {fit_loss - can_loss:+.2f} nats")
    if args.breakdown:
        loading = dataloader_pass(root)
        print(f"canonical breakdown: DataLoader + ToTensor alone {loading:.2f} s/epoch, "
              f"the rest (model, loss, Adam, loss.item()) {can_mean - loading:.2f} s/epoch")
    if args.bounds:
        print_bounds(peak, fit_mean)
    share = 100 * (per_epoch / fit_mean) / peak
    print(f"target (issue 11) at equal test loss (within 1 nat): "
          f">= 2.8x the canonical loop {'met' if ratio >= 2.8 else 'NOT met'} ({ratio:.2f}x), "
          f">= 55 % of the sgemm peak {'met' if share >= 55 else 'NOT met'} ({share:.0f} %), "
          f"loss {'met' if abs(fit_loss - can_loss) <= 1 else 'NOT met'}")


if __name__ == "__main__":
    main()
