"""The image workloads of torch_bench.py (issue #5): torchvision's ResNet-18 layout (spelled out in
torch_bench.py) and torchvision.models.mobilenet_v2(), and Pillow decoding, mirroring
benchmarks/RunpipeBench/ImageWorkloads.swift and DecodeWorkloads.swift: the same shapes, modes,
optimizers, FLOP formulas and files.

    python benchmarks/reference/torch_image.py --prepare-png DIR   # the PNG copies decode-png-224 reads
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PHOTOS = os.path.join(ROOT, "Tests", "Fixtures", "images", "photos")
PHOTO_NAMES = ["china", "flower"]
DECODE_BATCH_IMAGES = 64

# torchvision's inverted residual setting: (expansion, channels, repeats, first stride).
MOBILENET_V2_SETTING = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def mobilenet_v2_forward_flops(batch, size, classes=1000):
    """Mirror of mobileNetV2ForwardFlops in ImageWorkloads.swift (width 1.0)."""
    def out(i, stride):
        return (i + 2 - 3) // stride + 1

    hw = out(size, 2)
    total = 2.0 * batch * hw * hw * 32 * 3 * 9
    c_in = 32
    for t, c, n, s in MOBILENET_V2_SETTING:
        for i in range(n):
            hidden = c_in * t
            if t != 1:
                total += 2.0 * batch * hw * hw * hidden * c_in
            hw = out(hw, s if i == 0 else 1)
            total += 2.0 * batch * hw * hw * hidden * 9
            total += 2.0 * batch * hw * hw * c * hidden
            c_in = c
    total += 2.0 * batch * hw * hw * 1280 * c_in
    if classes:
        total += 2.0 * batch * 1280 * classes
    return total


def mobilenet_v2(torch):
    import torchvision
    return torchvision.models.mobilenet_v2()   # fresh weights, 1000 classes, dropout 0.2


# ----------------------------------------------------------------------------------- models

def resnet_forward_workload(torch, labels, size):
    from torch_bench import make_resnet18, resnet18_forward_flops
    batch = 32
    model = make_resnet18(torch).eval()
    x = torch.randn(batch, 3, size, size)

    def unit():
        with torch.inference_mode():
            model(x)

    return dict(unit=unit, unit_name="forward", units_per_run=5 if size <= 64 else 1,
                flops=resnet18_forward_flops(batch, size),
                notes={"model": "ResNet-18 (torchvision layout), NCHW", "input": f"[32,3,{size},{size}]",
                       "mode": "eval, no grad, logits"})


def mobilenet_forward_workload(torch, labels, size):
    batch = 32
    model = mobilenet_v2(torch).eval()
    x = torch.randn(batch, 3, size, size)

    def unit():
        with torch.inference_mode():
            model(x)

    return dict(unit=unit, unit_name="forward", units_per_run=5 if size <= 64 else 1,
                flops=mobilenet_v2_forward_flops(batch, size),
                notes={"model": "torchvision mobilenet_v2()", "input": f"[32,3,{size},{size}]", "mode": "eval, no grad, logits"})


def mobilenet_train_workload(torch, labels, size):
    F = torch.nn.functional
    batch = 32
    model = mobilenet_v2(torch).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(batch, 3, size, size)
    y = torch.tensor(labels(batch, 1000))

    def unit():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return dict(unit=unit, unit_name="step", units_per_run=1, flops=3 * mobilenet_v2_forward_flops(batch, size),
                notes={"model": "torchvision mobilenet_v2()", "input": f"[32,3,{size},{size}]",
                       "step": "forward (dropout 0.2) + backward + SGD(lr=0.1, momentum=0.9, wd=1e-4)"})


def mobilenet_frozen_epochs_workload(torch, labels):
    """Frozen MobileNetV2 and a linear head for 5 epochs, the backbone recomputed every epoch (what a
    training loop over a frozen backbone does without a feature cache)."""
    F = torch.nn.functional
    rows, size, batch, epochs, classes = 512, 96, 32, 5, 10
    model = mobilenet_v2(torch).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    images = [torch.randn(batch, 3, size, size) for _ in range(rows // batch)]
    y = torch.tensor(labels(rows, classes))

    def unit():
        torch.manual_seed(3)
        head = torch.nn.Linear(1280, classes)
        opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.01)
        for _ in range(epochs):
            for i, x in enumerate(images):
                with torch.no_grad():
                    f = torch.flatten(F.adaptive_avg_pool2d(model.features(x), 1), 1)
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(head(f), y[i * batch:(i + 1) * batch]).backward()
                opt.step()

    return dict(unit=unit, unit_name="job", units_per_run=1, flops=mobilenet_v2_forward_flops(rows, size, classes=None),
                notes={"model": "torchvision mobilenet_v2() frozen", "data": f"{rows} images 3x{size}x{size}",
                       "mode": f"backbone every epoch + {epochs} epochs of a linear head 1280->{classes}, batch {batch}, AdamW lr=1e-3"})


# ----------------------------------------------------------------------------------- decoding

def png_folder():
    import tempfile
    return os.environ.get("RUNPIPE_BENCH_IMAGES") or os.path.join(tempfile.gettempdir(), "runpipe-bench-images")


def prepare_png(folder):
    """Writes the photos as PNG (Pillow's default compression, level 6) into `folder`."""
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    for name in PHOTO_NAMES:
        with Image.open(os.path.join(PHOTOS, name + ".jpg")) as im:
            im.convert("RGB").save(os.path.join(folder, name + ".png"))


def decode_workload(torch, labels, fmt, size=224):
    """Per image: Image.open(path).convert('RGB'); resize so the shorter side is 224 (the longer
    int(224 * long / short), as torchvision's Resize and runpipe compute it) with Image.BILINEAR
    and reducing_gap=None (Pillow's antialiased triangle filter on uint8 samples); crop the center
    224×224 with torchvision's center_crop offsets; then a float32 [3, 224, 224] array in [0, 1]
    (np.ascontiguousarray(a.transpose(2, 0, 1), dtype=float32) / 255, what to_tensor gives). The
    64 images of a unit are spread over a ThreadPoolExecutor with as many workers as torch has
    threads (Pillow releases the GIL while decoding and resizing)."""
    import numpy as np
    from concurrent.futures import ThreadPoolExecutor
    import PIL
    from PIL import Image

    if fmt == "png":
        folder, ext = png_folder(), "png"
    else:
        folder, ext = PHOTOS, "jpg"
    files = [os.path.join(folder, f"{n}.{ext}") for n in PHOTO_NAMES]
    for f in files:
        if not os.path.exists(f):
            raise RuntimeError(f"{f} not found" + (f"; write it with torch_image.py --prepare-png {folder}" if fmt == "png" else ""))
    paths = [files[i % len(files)] for i in range(DECODE_BATCH_IMAGES)]

    def process(path):
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            short, long = min(w, h), max(w, h)
            new_long = int(size * long / short)
            nw, nh = (size, new_long) if w <= h else (new_long, size)
            im = im.resize((nw, nh), Image.BILINEAR, reducing_gap=None)
            top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
            im = im.crop((left, top, left + size, top + size))
            a = np.asarray(im)
            out = np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32)
            out *= 1.0 / 255.0
            return out.shape

    threads = torch.get_num_threads()
    pool = ThreadPoolExecutor(max_workers=threads)

    def unit():
        shapes = list(pool.map(process, paths))
        assert all(s == (3, size, size) for s in shapes)

    return dict(unit=unit, unit_name=f"{DECODE_BATCH_IMAGES} images", units_per_run=1, flops=0,
                notes={"images": f"{DECODE_BATCH_IMAGES}: china and flower (427x640) alternating, {fmt.upper()}",
                       "steps": "Image.open().convert('RGB') -> resize(BILINEAR, reducing_gap=None) shorter side 224 -> "
                                "crop center 224 -> float32 [3,224,224] in [0,1]",
                       "parallel": f"ThreadPoolExecutor({threads})", "pillow": PIL.__version__})


IMAGE_WORKLOADS = {
    "resnet18-forward-64": lambda torch, labels: resnet_forward_workload(torch, labels, 64),
    "resnet18-forward-224": lambda torch, labels: resnet_forward_workload(torch, labels, 224),
    "mobilenetv2-forward-64": lambda torch, labels: mobilenet_forward_workload(torch, labels, 64),
    "mobilenetv2-forward-224": lambda torch, labels: mobilenet_forward_workload(torch, labels, 224),
    "mobilenetv2-train-64": lambda torch, labels: mobilenet_train_workload(torch, labels, 64),
    "mobilenetv2-train-224": lambda torch, labels: mobilenet_train_workload(torch, labels, 224),
    "mobilenetv2-frozen-5ep": mobilenet_frozen_epochs_workload,
    "decode-jpeg-224": lambda torch, labels: decode_workload(torch, labels, "jpeg"),
    "decode-png-224": lambda torch, labels: decode_workload(torch, labels, "png"),
}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--prepare-png":
        prepare_png(sys.argv[2])
        sys.exit(0)
    sys.exit(__doc__)
