"""Run the benchmarks: ``python -m bench`` runs every ``bench/bench_*.py``'s ``main()``;
``python -m bench raster_h3 impact_weights`` runs only those. Each benchmark seeds its own data."""

from __future__ import annotations

import importlib
import pkgutil
import random
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    wanted = [a if a.startswith("bench_") else f"bench_{a}" for a in args] or names
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; available: {[n[6:] for n in names]}")
    for name in wanted:
        random.seed(0)
        np.random.seed(0)
        print(f"== {name}", flush=True)
        importlib.import_module(f"bench.{name}").main([])


if __name__ == "__main__":
    main()
