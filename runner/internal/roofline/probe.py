# Times a device-to-device copy with CUDA events and prints one JSON object.
# argv: device index, bytes, timed iterations, warm-up iterations.
import json
import sys


def fail(msg, code):
    print(json.dumps({"error": msg}))
    sys.exit(code)


def main():
    dev, nbytes, iters, warmup = (int(a) for a in sys.argv[1:5])
    try:
        import torch
    except ImportError as e:
        fail("python3 cannot import torch: %s" % e, 3)
    if not torch.cuda.is_available():
        fail("torch %s sees no CUDA device" % torch.__version__, 4)
    if dev >= torch.cuda.device_count():
        fail("cuda:%d does not exist (torch sees %d devices)" % (dev, torch.cuda.device_count()), 4)
    d = torch.device("cuda", dev)
    torch.cuda.set_device(d)
    try:
        src = torch.empty(nbytes, dtype=torch.uint8, device=d)
        src.fill_(1)
        dst = torch.empty_like(src)
    except torch.cuda.OutOfMemoryError as e:
        fail("cannot allocate 2 x %d bytes on cuda:%d: %s" % (nbytes, dev, str(e).splitlines()[0]), 5)
    for _ in range(warmup):
        dst.copy_(src)
    torch.cuda.synchronize(d)
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    for k in range(iters):
        starts[k].record()
        dst.copy_(src)
        ends[k].record()
    torch.cuda.synchronize(d)
    ms = sorted(s.elapsed_time(e) for s, e in zip(starts, ends))
    n = len(ms)
    med = ms[n // 2] if n % 2 else (ms[n // 2 - 1] + ms[n // 2]) / 2
    props = torch.cuda.get_device_properties(d)
    uuid = getattr(props, "uuid", None)
    print(json.dumps({
        "device": dev,
        "name": props.name,
        "uuid": ("GPU-%s" % uuid) if uuid is not None else "",
        "bytes": nbytes,
        "iters": iters,
        "warmup": warmup,
        "median_ms": med,
        "min_ms": ms[0],
        "max_ms": ms[-1],
        "bytes_per_s": 2 * nbytes / (med / 1e3),
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "",
    }))


main()
