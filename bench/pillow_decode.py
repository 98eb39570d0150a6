"""Pillow reference for the data bench: the recipe's decode (JPEG -> RGB -> 128x128 nearest)
on one core, in one process, from bytes already in memory; and, as for sharp, a decode of a
1024x1024 JPEG, whose cost per 256x256 of pixels is the decoder's without per-image overhead.

Usage: python3 bench/pillow_decode.py DIR N
  -> one JSON line {"pil": version, "ms", "cpu_ms", "n", "big_ms", "big_cpu_ms", "big_n"}
     (big_n: 1024x1024 decodes times 16, i.e. in 256x256 equivalents)
"""
import io
import json
import os
import resource
import sys
import time

from PIL import Image, __version__


def cpu_ms() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return 1000 * (r.ru_utime + r.ru_stime)


def main() -> None:
    folder, n = sys.argv[1], int(sys.argv[2])
    data = [open(os.path.join(folder, "train-jpg", f"train_{i}.jpg"), "rb").read() for i in range(n)]

    def decode(b: bytes) -> bytes:
        return Image.open(io.BytesIO(b)).convert("RGB").resize((128, 128), Image.NEAREST).tobytes()

    for b in data[:32]:
        decode(b)
    c0, t0 = cpu_ms(), time.perf_counter()
    for b in data:
        decode(b)
    ms, cms = 1000 * (time.perf_counter() - t0), cpu_ms() - c0

    buf = io.BytesIO()
    Image.open(io.BytesIO(data[0])).convert("RGB").resize((1024, 1024)).save(buf, "JPEG", quality=90)
    big, reps = buf.getvalue(), max(2, round(n / 16))
    Image.open(io.BytesIO(big)).convert("RGB").tobytes()
    c0, t0 = cpu_ms(), time.perf_counter()
    for _ in range(reps):
        Image.open(io.BytesIO(big)).convert("RGB").tobytes()
    print(json.dumps({"pil": __version__, "ms": ms, "cpu_ms": cms, "n": n,
                      "big_ms": 1000 * (time.perf_counter() - t0), "big_cpu_ms": cpu_ms() - c0, "big_n": reps * 16}))


if __name__ == "__main__":
    main()
