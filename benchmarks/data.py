"""Data speed against the issue's anchors: GSM8K train load (warm cache) < 2 s, stream > 50,000 items/s.

The load is timed in a fresh interpreter (so `import datasets` is counted, as at daemon start-up)
after one warm-up load has filled the `datasets` cache; the stream draws phase 3's 50/25/25 mixture
in batches of the tiny and default policies' sizes. Run: `python benchmarks/data.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autocurriculum.data import MixtureStream, apply_subset, load_source, pool_key
from autocurriculum.data.gsm8k_files import locate_gsm8k
from autocurriculum.policy import Mixture, MixtureComponent, SourceSpec, SubsetSpec

REPO = Path(__file__).resolve().parents[1]
GSM8K = locate_gsm8k(REPO)
LOAD_ANCHOR_SECONDS = 2.0
STREAM_ANCHOR_ITEMS_PER_SECOND = 50_000

TIMED_LOAD = f"""
import json, time
from pathlib import Path
started = time.perf_counter()
from autocurriculum.data import load_source
from autocurriculum.policy import SourceSpec
items = load_source(SourceSpec("gsm8k", "gsm8k", "math", path={str(GSM8K)!r}), seed=0, base_dir=Path("."))
print(json.dumps([len(items), time.perf_counter() - started]))
"""


def report(name: str, value: str, anchor: str, ok: bool) -> None:
    print(f"{name:<52} {value:>16}   anchor {anchor:<18} {'OK' if ok else 'SLOWER THAN ANCHOR'}")


def fresh_process_load() -> tuple[int, float]:
    out = subprocess.run([sys.executable, "-c", TIMED_LOAD], capture_output=True, text=True, check=True).stdout
    count, seconds = json.loads(out.strip().splitlines()[-1])
    return int(count), float(seconds)


def main() -> None:
    spec = SourceSpec("gsm8k", "gsm8k", "math", path=str(GSM8K))
    fresh_process_load()  # warm-up: fills the datasets cache
    loads = [fresh_process_load() for _ in range(3)]
    count, seconds = loads[0][0], min(s for _, s in loads)
    report(f"GSM8K train load, fresh process ({count} items)", f"{seconds:.2f} s", f"< {LOAD_ANCHOR_SECONDS:g} s",
           seconds < LOAD_ANCHOR_SECONDS)
    started = time.perf_counter()
    gsm = load_source(spec, seed=0, base_dir=REPO)
    in_process = time.perf_counter() - started
    report("GSM8K train load, in process (datasets imported)", f"{in_process:.2f} s", f"< {LOAD_ANCHOR_SECONDS:g} s",
           in_process < LOAD_ANCHOR_SECONDS)

    with tempfile.TemporaryDirectory() as cache:
        code = SourceSpec("code", "code", "code", options={"count": 2000})
        started = time.perf_counter()
        load_source(code, seed=0, base_dir=REPO, cache_dir=Path(cache))
        cold = time.perf_counter() - started
        started = time.perf_counter()
        load_source(code, seed=0, base_dir=REPO, cache_dir=Path(cache))
        warm = time.perf_counter() - started
    print(f"{'code source, 2000 programs: run / cached':<52} {f'{cold:.2f} / {warm:.2f} s':>16}   (no anchor)")

    arithmetic = load_source(SourceSpec("a", "arithmetic", "math", options={"count": 4000}), seed=0, base_dir=REPO)
    qa = load_source(SourceSpec("qa", "qa", "qa", options={"count": 4000}), seed=0, base_dir=REPO)
    phase3 = Mixture((MixtureComponent("gsm8k", 0.5), MixtureComponent("a", 0.25), MixtureComponent("qa", 0.25)))
    pools = {pool_key(c): items for c, items in zip(phase3.components, (gsm, arithmetic, qa))}
    phase1 = MixtureComponent("gsm8k", 1.0, SubsetSpec(0.0, 0.25))
    pools[pool_key(phase1)] = apply_subset(gsm, phase1.subset, 0, "gsm8k")
    draws = 200_000
    for mixture, label in ((phase3, "phase 3 50/25/25"), (Mixture((phase1,)), "phase 1 25% slice")):
        for batch in (8, 64):
            stream = MixtureStream(pools, mixture, seed=0)
            started = time.perf_counter()
            for _ in range(draws // batch):
                stream.next_batch(batch)
            rate = draws / (time.perf_counter() - started)
            report(f"stream, {label}, batches of {batch}", f"{rate:,.0f} items/s",
                   f"> {STREAM_ANCHOR_ITEMS_PER_SECOND:,} items/s", rate > STREAM_ANCHOR_ITEMS_PER_SECOND)
    state = json.dumps(stream.state())
    print(f"{'stream state after 200,000 draws (JSON)':<52} {f'{len(state)} bytes':>16}   (no anchor)")


if __name__ == "__main__":
    main()
