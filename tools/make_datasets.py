"""Regenerate the small real corpora shipped in ``sksemantic/datasets/data/``.

Reads the larger embedded sets in ``../shared/data`` (see its README: Debian bookworm
package descriptions and WordNet 3.0 definitions, embedded with all-MiniLM-L6-v2,
float16) and writes seeded subsets:

- ``debian_packages.npz`` + ``debian_packages.json``: about 3,000 one-line package
  descriptions, drawn as *whole source-package groups* so that every near-duplicate
  family is complete;
- ``wordnet_queries.npz`` + ``wordnet_queries.json``: 2,000 WordNet definitions with
  their known-item queries (the synset's lemmas), both embedded.

Run from the repository root::

    python tools/make_datasets.py [--shared ../shared/data]

The output is deterministic for a given input (fixed seed).
"""

import argparse
import json
from pathlib import Path

import numpy as np

SEED = 20240601
N_DEBIAN = 3000
N_WORDNET = 2000


def _lines(path):
    return Path(path).read_text(encoding="utf-8").split("\n")[:-1]


def make_debian(shared, out, rng):
    emb = np.load(shared / "debian_emb.npy")
    labels = np.load(shared / "debian_labels.npy")
    groups = np.load(shared / "debian_groups.npy")
    texts = _lines(shared / "debian_texts.txt")
    meta = [json.loads(line) for line in _lines(shared / "debian_meta.jsonl")]
    label_names = json.loads((shared / "debian_meta.json").read_text())["label_names"]
    assert len(texts) == len(meta) == len(emb) == len(groups)

    # Whole groups in a seeded random order until about N_DEBIAN items are taken.
    uniq, counts = np.unique(groups, return_counts=True)
    order = rng.permutation(len(uniq))
    take = order[np.cumsum(counts[order]) <= N_DEBIAN]
    chosen = np.isin(groups, uniq[take])
    rows = np.flatnonzero(chosen)
    # Renumber groups 0..n_groups-1 in order of first appearance.
    _, first, inv = np.unique(groups[rows], return_index=True, return_inverse=True)
    rank = np.empty_like(first)
    rank[np.argsort(first)] = np.arange(len(first))
    new_groups = rank[inv].astype(np.int32)

    np.savez_compressed(
        out / "debian_packages.npz",
        embeddings=emb[rows].astype(np.float16),
        labels=labels[rows].astype(np.int16),
        groups=new_groups,
    )
    info = {
        "texts": [texts[i] for i in rows],
        "packages": [meta[i]["package"] for i in rows],
        "sources": [meta[i]["source"] for i in rows],
        "label_names": label_names,
        "source": "Debian bookworm package metadata (apt-cache dumpavail), one-line descriptions",
        "model": "sentence-transformers/all-MiniLM-L6-v2, L2-normalised, float16",
    }
    (out / "debian_packages.json").write_text(json.dumps(info, ensure_ascii=False))
    sizes = np.bincount(new_groups)
    print(f"debian: {len(rows)} items, {len(sizes)} groups, {np.sum(sizes > 1)} with >1 member")


def make_wordnet(shared, out, rng):
    emb = np.load(shared / "wordnet20k_emb.npy")
    qemb = np.load(shared / "wordnet20k_query_emb.npy")
    labels = np.load(shared / "wordnet20k_labels.npy")
    texts = _lines(shared / "wordnet20k_texts.txt")
    queries = _lines(shared / "wordnet20k_queries.txt")
    meta = [json.loads(line) for line in _lines(shared / "wordnet20k_meta.jsonl")]
    label_names = json.loads((shared / "wordnet20k_meta.json").read_text())["label_names"]
    assert len(texts) == len(queries) == len(emb) == len(meta)

    rows = np.sort(rng.choice(len(emb), N_WORDNET, replace=False))
    np.savez_compressed(
        out / "wordnet_queries.npz",
        embeddings=emb[rows].astype(np.float16),
        query_embeddings=qemb[rows].astype(np.float16),
        labels=labels[rows].astype(np.int16),
    )
    info = {
        "texts": [texts[i] for i in rows],
        "queries": [queries[i] for i in rows],
        "synsets": [meta[i]["id"] for i in rows],
        "label_names": label_names,
        "source": "WordNet 3.0 (Debian package wordnet-base), definitions and lemmas",
        "model": "sentence-transformers/all-MiniLM-L6-v2, L2-normalised, float16",
    }
    (out / "wordnet_queries.json").write_text(json.dumps(info, ensure_ascii=False))
    print(f"wordnet: {len(rows)} definitions with known-item queries")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", default="../shared/data", type=Path)
    parser.add_argument("--out", default=Path(__file__).resolve().parents[1] / "sksemantic/datasets/data",
                        type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    make_debian(args.shared, args.out, np.random.default_rng(SEED))
    make_wordnet(args.shared, args.out, np.random.default_rng(SEED + 1))


if __name__ == "__main__":
    main()
