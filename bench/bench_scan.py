"""The emergency scan on the patients' texts of tests/corpus: what it costs per text.

    .venv/bin/python -m bench.bench_scan [--repeat 5]

Loads the lexicon and wordfreq's lists once (reported apart), then scans every text of every
corpus file ``--repeat`` times: the first pass meets every word for the first time (the
per-word cache is empty), the next ones are warm. Reports microseconds per text (median of the
passes after the first), and the share of texts the scan reads as red. Pure Python, one core.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

from app.triage import emergency

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    texts = []
    for path in sorted(CORPUS.glob("*.csv")):
        with open(path, encoding="utf-8", newline="") as fh:
            texts += [row["text"] for row in csv.DictReader(fh)]
    started = time.perf_counter()
    emergency.lexicon()
    emergency.common_words()
    load_s = time.perf_counter() - started
    passes = []
    red = 0
    for n in range(args.repeat):
        started = time.perf_counter()
        results = [emergency.scan(text) for text in texts]
        passes.append((time.perf_counter() - started) / len(texts) * 1e6)
        red = sum(r.red for r in results)
    warm = statistics.median(passes[1:]) if len(passes) > 1 else passes[0]
    print(f"{len(texts)} texts; lexicon {emergency.lexicon().version}: {len(emergency.lexicon().phrases)} phrases, "
          f"loaded with the word lists in {load_s:.2f} s")
    print(f"first pass {passes[0]:.0f} us/text, warm {warm:.0f} us/text; read as red: {red}/{len(texts)}")


if __name__ == "__main__":
    main()
