#!/usr/bin/env python3
"""PyTorch reference for runpipe-bench: the same workloads, shapes, optimizers and FLOP counts.

    python benchmarks/reference/torch_bench.py WORKLOAD [--threads N] [--runs R] [--warmup W]

Prints one JSON line like runpipe-bench does (see benchmarks/RunpipeBench/main.swift):
median_ms / runs_ms per unit (one step, forward or call), flops_per_run for that unit,
sgemm_gflops of one 1024^3 torch.mm, peak_rss_mb (VmHWM) and baseline_rss_mb (VmRSS after
importing torch, before building anything). Each definition mirrors benchmarks/RunpipeBench.
"""

import argparse
import json
import os
import sys
import time

WORKLOADS = ["sgemm", "mlp-train", "encoder-forward", "encoder-train", "resnet18-train-64", "resnet18-train-224",
             "resnet18-forward-64", "resnet18-forward-224", "mobilenetv2-forward-64", "mobilenetv2-forward-224",
             "mobilenetv2-train-64", "mobilenetv2-train-224", "mobilenetv2-frozen-5ep", "decode-jpeg-224", "decode-png-224",
             "minilm-forward-128", "minilm-forward-32", "minilm-finetune", "minilm-frozen-5ep", "minilm-lora", "multimodal-epoch",
             "tokenize"]


def proc_status_mib(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def now():
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def median(xs):
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def labels(n, classes):
    # Same fixed label pattern as runpipe-bench's `labels`.
    return [(i * 7 + 3) % classes for i in range(n)]


def measure(unit, units_per_run, warmup, runs):
    for _ in range(warmup):
        for _ in range(units_per_run):
            unit()
    times = []
    for _ in range(runs):
        t0 = now()
        for _ in range(units_per_run):
            unit()
        times.append((now() - t0) * 1000.0 / units_per_run)
    return times


def sgemm_gflops(torch, n=1024, calls=10):
    a = torch.rand(n, n) - 0.5
    b = torch.rand(n, n) - 0.5
    c = torch.empty(n, n)
    torch.mm(a, b, out=c)
    torch.mm(a, b, out=c)
    times = []
    for _ in range(calls):
        t0 = now()
        torch.mm(a, b, out=c)
        times.append(now() - t0)
    return 2.0 * n * n * n / median(times) / 1e9


# ----------------------------------------------------------------------------------- workloads

def sgemm_workload(torch, n=1024):
    a = torch.rand(n, n) * 2 - 1
    b = torch.rand(n, n) * 2 - 1
    c = torch.empty(n, n)

    def unit():
        torch.mm(a, b, out=c)

    return dict(unit=unit, unit_name="call", units_per_run=10, flops=2.0 * n ** 3,
                notes={"shape": f"{n}x{n}x{n}"})


def mlp_train_workload(torch):
    nn, F = torch.nn, torch.nn.functional
    batch, sizes = 256, [64, 256, 256, 2]
    fwd = sum(2.0 * batch * sizes[i] * sizes[i + 1] for i in range(len(sizes) - 1))
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)   # weight_decay 0.01 (default)
    x = torch.randn(batch, 64)
    y = torch.tensor(labels(batch, 2))

    def unit():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return dict(unit=unit, unit_name="step", units_per_run=100, flops=3 * fwd,
                notes={"model": "MLP 64-256-256-2 relu", "batch": "256", "optimizer": "AdamW lr=1e-3 wd=0.01"})


LAYERS, HIDDEN, HEADS, FFN, BATCH, TOKENS, CLASSES = 6, 384, 12, 1536, 32, 128, 2


def encoder_forward_flops():
    t, h, f, s, b = BATCH * TOKENS, HIDDEN, FFN, TOKENS, BATCH
    return float(LAYERS * (8 * t * h * h + 4 * b * s * s * h + 4 * t * h * f))


def make_encoder(torch):
    nn, F = torch.nn, torch.nn.functional

    class EncoderLayer(nn.Module):
        """BERT post-norm layer: attention.self.{query,key,value}, attention.output, FFN."""

        def __init__(self):
            super().__init__()
            self.query = nn.Linear(HIDDEN, HIDDEN)
            self.key = nn.Linear(HIDDEN, HIDDEN)
            self.value = nn.Linear(HIDDEN, HIDDEN)
            self.attn_out = nn.Linear(HIDDEN, HIDDEN)
            self.attn_norm = nn.LayerNorm(HIDDEN, eps=1e-12)
            self.intermediate = nn.Linear(HIDDEN, FFN)
            self.output = nn.Linear(FFN, HIDDEN)
            self.out_norm = nn.LayerNorm(HIDDEN, eps=1e-12)
            self.dropout = nn.Dropout(0.1)
            self.attn_dropout = 0.1

        def heads(self, t):
            b, s, _ = t.shape
            return t.view(b, s, HEADS, HIDDEN // HEADS).transpose(1, 2)

        def forward(self, x):
            b, s, _ = x.shape
            q, k, v = self.heads(self.query(x)), self.heads(self.key(x)), self.heads(self.value(x))
            ctx = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_dropout if self.training else 0.0)
            ctx = ctx.transpose(1, 2).reshape(b, s, HIDDEN)
            attended = self.attn_norm(self.dropout(self.attn_out(ctx)) + x)
            inner = F.gelu(self.intermediate(attended))          # exact (erf) GELU
            return self.out_norm(self.dropout(self.output(inner)) + attended)

    return nn.Sequential(*[EncoderLayer() for _ in range(LAYERS)])


def encoder_workload(torch, training):
    F = torch.nn.functional
    encoder = make_encoder(torch)
    x = torch.randn(BATCH, TOKENS, HIDDEN)
    notes = {"model": "6x post-norm encoder h384 12 heads ffn1536 gelu-erf", "input": "[32,128,384]",
             "mode": "train, dropout 0.1, AdamW lr=1e-3 wd=0.01" if training else "eval, no grad"}
    if not training:
        encoder.eval()

        def unit():
            with torch.inference_mode():
                encoder(x)

        return dict(unit=unit, unit_name="forward", units_per_run=1, flops=encoder_forward_flops(), notes=notes)

    encoder.train()
    head = torch.nn.Linear(HIDDEN, CLASSES)
    opt = torch.optim.AdamW(list(encoder.parameters()) + list(head.parameters()), lr=1e-3)
    y = torch.tensor(labels(BATCH, CLASSES))

    def unit():
        opt.zero_grad(set_to_none=True)
        pooled = encoder(x).mean(dim=1)
        loss = F.cross_entropy(head(pooled), y)
        loss.backward()
        opt.step()

    flops = 3 * (encoder_forward_flops() + 2.0 * BATCH * HIDDEN * CLASSES)
    return dict(unit=unit, unit_name="step", units_per_run=1, flops=flops, notes=notes)


def resnet18_forward_flops(batch, size):
    """Mirror of resnet18ForwardFlops in benchmarks/RunpipeBench/ResNetWorkload.swift."""
    def out(i, k, s, p):
        return (i + 2 * p - k) // s + 1

    total = 0.0
    hw = out(size, 7, 2, 3)
    total += 2.0 * batch * hw * hw * 64 * 3 * 49
    hw = out(hw, 3, 2, 1)
    in_c = 64
    for i, c in enumerate([64, 128, 256, 512]):
        for j in range(2):
            stride = 2 if (i > 0 and j == 0) else 1
            o = out(hw, 3, stride, 1)
            total += 2.0 * batch * o * o * c * in_c * 9
            total += 2.0 * batch * o * o * c * c * 9
            if stride != 1 or in_c != c:
                total += 2.0 * batch * o * o * c * in_c
            hw, in_c = o, c
    total += 2.0 * batch * 512 * 1000
    return total


def make_resnet18(torch, classes=1000):
    """torchvision's resnet18 layout, written out so torchvision is not needed."""
    nn = torch.nn

    class BasicBlock(nn.Module):
        def __init__(self, in_c, out_c, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(in_c, out_c, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(out_c)
            self.conv2 = nn.Conv2d(out_c, out_c, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(out_c)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None
            if stride != 1 or in_c != out_c:
                self.downsample = nn.Sequential(nn.Conv2d(in_c, out_c, 1, stride, bias=False), nn.BatchNorm2d(out_c))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            identity = x if self.downsample is None else self.downsample(x)
            return self.relu(out + identity)

    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            blocks, in_c = [], 64
            for i, c in enumerate([64, 128, 256, 512]):
                blocks += [BasicBlock(in_c, c, 1 if i == 0 else 2), BasicBlock(c, c, 1)]
                in_c = c
            self.blocks = nn.Sequential(*blocks)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512, classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.avgpool(self.blocks(x))
            return self.fc(torch.flatten(x, 1))

    return ResNet18()


def resnet_workload(torch, size):
    F = torch.nn.functional
    batch = 32
    model = make_resnet18(torch)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(batch, 3, size, size)
    y = torch.tensor(labels(batch, 1000))

    def unit():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return dict(unit=unit, unit_name="step", units_per_run=1, flops=3 * resnet18_forward_flops(batch, size),
                notes={"model": "ResNet-18 (torchvision layout), NCHW", "input": f"[32,3,{size},{size}]",
                       "step": "forward + backward + SGD(lr=0.1, momentum=0.9, wd=1e-4)"})


# ----------------------------------------------------------------------------------- tokenize
# Mirrors benchmarks/RunpipeBench/TokenizeWorkload.swift: the same sentences (same LCG, same
# words), the same tokenizer file, truncation 128, no padding, one thread. Needs only the
# `tokenizers` package (not torch).

BENCH_WORDS = """
    the a of and to in is was for on that with as by at from it this be are have has not but or an
    they we you he she his her their our will would can could should about after before more most
    other some such only also than then when where which while who very just over into through
    product review quality price delivery service customer order package battery screen camera
    sound color size weight design material fabric shoes jacket phone laptop coffee kitchen garden
    excellent terrible amazing disappointing comfortable expensive cheap reliable broken perfect
    recommend returned arrived works worked stopped charging loves hated bought ordered received
    days weeks months years hours minutes first second third last again never always sometimes
    really quite extremely slightly absolutely definitely probably unfortunately honestly overall
    Amazon Samsung iPhone USB-C Wi-Fi 4K HDMI Bluetooth café naïve résumé Zürich São Paulo
    don't isn't wasn't can't won't I've I'm it's that's customer-service half-price e-mail
    12 3.5 100% $49.99 2x 24/7 5-star 10/10 #1 @home :) ...
""".split()


def bench_sentences(count):
    state = 0x2545F4914F6CDD1D

    def nxt(n):
        nonlocal state
        state = (state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        return (state >> 33) % n

    out = []
    for _ in range(count):
        n = 8 + nxt(38)
        s = ""
        for k in range(n):
            w = BENCH_WORDS[nxt(len(BENCH_WORDS))]
            if k == 0 or nxt(10) == 0:
                w = w[:1].upper() + w[1:]
            if k > 0:
                s += " "
            s += w
            if k < n - 1 and nxt(12) == 0:
                s += ","
        s += [".", "!", "?", "."][nxt(4)]
        out.append(s)
    return out


def tokenize_main(args):
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["RAYON_NUM_THREADS"] = "1"
    os.environ["RAYON_RS_NUM_CPUS"] = "1"
    record = {"workload": "tokenize", "impl": "tokenizers", "threads": 1}
    try:
        import tokenizers
        from tokenizers import Tokenizer
        root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
        path, name = os.path.join(root, "models", "all-MiniLM-L6-v2", "tokenizer.json"), "all-MiniLM-L6-v2"
        if not os.path.exists(path):
            path, name = os.path.join(root, "Tests", "Fixtures", "tokenizers", "bert-uncased.tokenizer.json"), "bert-uncased fixture"
        count = 10000
        texts = bench_sentences(count)
        baseline = proc_status_mib("VmRSS")
        tok = Tokenizer.from_file(path)
        tok.enable_truncation(max_length=128)
        tok.no_padding()
        check, ntok = 0, 0
        for i, e in enumerate(tok.encode_batch(texts)):
            ntok += len(e.ids)
            for j, x in enumerate(e.ids):
                check = (check + x * (i + j + 1)) % 1000000007
        times = measure(lambda: tok.encode_batch(texts), 1, args.warmup, args.runs)
        med = median(times)
        record.update({
            "runs": args.runs, "warmup": args.warmup, "unit": "batch", "units_per_run": 1,
            "median_ms": med, "runs_ms": times, "flops_per_run": 0, "gflops": 0, "sgemm_gflops": None,
            "peak_rss_mb": proc_status_mib("VmHWM"), "baseline_rss_mb": baseline,
            "notes": {"strings": str(count), "tokenizer": name, "tokens": str(ntok), "ids_checksum": str(check),
                      "truncation": "128, no padding", "tokenizers": tokenizers.__version__,
                      "threads": "1 (TOKENIZERS_PARALLELISM=false, RAYON_NUM_THREADS=1)"},
        })
    except Exception as e:
        record["error"] = f"{type(e).__name__}: {e}"
        print(json.dumps(record), flush=True)
        return 1
    print(json.dumps(record), flush=True)
    return 0


def make_workload(torch, name):
    if name == "multimodal-epoch":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from torch_multimodal import MULTIMODAL_WORKLOADS
        return MULTIMODAL_WORKLOADS[name](torch, labels)
    if name == "minilm-lora":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from torch_peft import PEFT_WORKLOADS
        return PEFT_WORKLOADS[name](torch, labels)
    if name.startswith("minilm-"):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from torch_text import TEXT_WORKLOADS
        return TEXT_WORKLOADS[name](torch, labels)
    if name.startswith(("resnet18-forward-", "mobilenetv2-", "decode-")):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from torch_image import IMAGE_WORKLOADS
        return IMAGE_WORKLOADS[name](torch, labels)
    if name == "sgemm":
        return sgemm_workload(torch)
    if name == "mlp-train":
        return mlp_train_workload(torch)
    if name == "encoder-forward":
        return encoder_workload(torch, training=False)
    if name == "encoder-train":
        return encoder_workload(torch, training=True)
    if name.startswith("resnet18-train-"):
        return resnet_workload(torch, int(name.rsplit("-", 1)[1]))
    raise ValueError(f"unknown workload '{name}'; known: {', '.join(WORKLOADS)}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workload", choices=WORKLOADS)
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (default: torch's own)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    args = p.parse_args()
    if args.runs < 1:
        p.error("--runs must be at least 1")
    if args.workload == "tokenize":
        return tokenize_main(args)

    if args.threads > 0:
        # Must be in the environment before torch loads its OpenMP / MKL runtimes.
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ.setdefault(var, str(args.threads))
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    record = {"workload": args.workload, "impl": "pytorch", "threads": threads}
    try:
        torch.manual_seed(0)
        baseline = proc_status_mib("VmRSS")
        sgemm = sgemm_gflops(torch)
        w = make_workload(torch, args.workload)
        times = measure(w["unit"], w["units_per_run"], args.warmup, args.runs)
        med = median(times)
        record.update({
            "runs": args.runs, "warmup": args.warmup, "unit": w["unit_name"], "units_per_run": w["units_per_run"],
            "median_ms": med, "runs_ms": times, "flops_per_run": w["flops"], "gflops": w["flops"] / (med * 1e6),
            "sgemm_gflops": sgemm, "peak_rss_mb": proc_status_mib("VmHWM"), "baseline_rss_mb": baseline,
            "notes": dict(w["notes"], torch=torch.__version__),
        })
    except Exception as e:  # report like runpipe-bench: one JSON line with the error
        record["error"] = f"{type(e).__name__}: {e}"
        print(json.dumps(record), flush=True)
        return 1
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
