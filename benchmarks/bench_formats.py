#!/usr/bin/env python
"""Benchmark the number formats: encode+decode throughput, OliVe search quality, model reload time.

Run: ``python benchmarks/bench_formats.py [--size 4096] [--repeat 3] [--skip-model]``

1. Encode + decode of one ``size x size`` FP16 matrix per format, in M weights/s (best of
   ``--repeat`` runs after a JIT warm-up). The matrix is synthetic: Student-t (4 degrees of freedom)
   weights scaled to std 0.02, heavy-tailed like LLM weights. BSFP is timed encode + full 16-bit
   decode (verify) and encode + draft decode separately.
2. OliVe clip search: squared error of the default coarse-to-fine search vs the exhaustive
   (reference) search on real SmolLM2-135M layers, and their times.
3. SmolLM2-135M reload time from the specsim cache (cold process imports excluded and included).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

import torch

from specsim.workload.formats import get_format
from specsim.workload.formats.bsfp import BSFP, LAYOUTS


def best_time(fn, repeat: int) -> float:
    fn()  # warm-up (JIT compile / cache load)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def throughput(size: int, repeat: int) -> None:
    torch.manual_seed(0)
    t = torch.distributions.StudentT(4.0).sample((size, size))
    w = (t / t.std() * 0.02).half()
    n = w.numel()
    print(f"\n## encode + decode of a {size}x{size} FP16 matrix (synthetic Student-t weights), best of {repeat}")
    print(f"{'format':24s} {'seconds':>8s} {'M weights/s':>12s}")
    for layout in LAYOUTS:
        codec = BSFP(layout)
        for what, dec in (("full", codec.decode_fp16), ("draft", codec.decode_draft)):
            s = best_time(lambda: dec(codec.encode(w)), repeat)
            print(f"{'bsfp_' + layout + ' ' + what:24s} {s:8.3f} {n / s / 1e6:12.1f}")
    for name in ("mxfp4", "olive4", "olive8", "tender4", "tender8", "int4", "int4_g128", "int8"):
        fmt = get_format(name)
        s = best_time(lambda: fmt.decode(fmt.encode(w)), repeat)
        print(f"{name:24s} {s:8.3f} {n / s / 1e6:12.1f}")


def olive_search_quality() -> None:
    from specsim.workload.formats import olive
    from specsim.workload.models import decoder_linears, load_model

    linears = decoder_linears(load_model("smollm2-135m", tokenizer=False).model)
    print("\n## OliVe clip search on real SmolLM2-135M layers: coarse-to-fine vs exhaustive")
    print(f"{'layer':36s} {'bits':>4s} {'SSE ratio':>10s} {'t exh s':>8s} {'t c2f s':>8s}")
    for name, lin in linears[::35]:
        w = lin.weight.detach().half().float()
        for bits in (4, 8):
            t0 = time.perf_counter()
            ex = olive.search(w, bits, per_row=True, strategy="exhaustive")
            t1 = time.perf_counter()
            fast = olive.search(w, bits, per_row=True)
            t2 = time.perf_counter()
            print(f"{name:36s} {bits:4d} {fast.sse / ex.sse:10.4f} {t1 - t0:8.2f} {t2 - t1:8.2f}")


def model_reload() -> None:
    code = (
        "import time; t=time.perf_counter(); import torch, transformers;"
        "from transformers import AutoModelForCausalLM; from transformers.models.llama import modeling_llama;"
        "t1=time.perf_counter(); from specsim.workload.models import load_model; m=load_model('smollm2-135m');"
        "t2=time.perf_counter(); m=load_model('smollm2-135m');"
        "print(f'{t1-t:.2f} {t2-t1:.2f} {time.perf_counter()-t2:.2f}')"
    )
    subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)  # converts if needed
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    print("\n## SmolLM2-135M reload from the specsim cache (fresh process)")
    print(f"import torch + transformers + Llama modeling code: {out[0]} s")
    print(f"load_model('smollm2-135m') (weights + tokenizer): first {out[1]} s, again {out[2]} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-model", action="store_true", help="skip the parts that need SmolLM2-135M")
    args = ap.parse_args()
    print(
        f"# specsim format benchmark on {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch threads"
    )
    throughput(args.size, args.repeat)
    if not args.skip_model:
        olive_search_quality()
        model_reload()


if __name__ == "__main__":
    main()
