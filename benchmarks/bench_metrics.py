"""Code metrics side by side: sksemantic.metrics and semantic-id 0.2.5's utils.metrics.

Both score the same codes (RQKMeansEncoder, 3 levels of 64, on real Debian embeddings),
each library in its own process. Collision rates must agree exactly; recall@10 differs
by definition where codes tie (semantic-id takes tied items in index order through a
brute-force search with a Python code metric; sksemantic scores the exact expectation
under random tie order), and distance correlations use different pair samples.

Usage (from the repository root)::

    python benchmarks/bench_metrics.py            # 3,000 rows
    python benchmarks/bench_metrics.py --n 5000

semantic-id runs in the peers environment made by ``../shared/tools/peers-venv`` (pass
``--peer-python`` or let ``benchmarks/_common.py`` find it).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_dir, peers_python  # noqa: E402

PEER = r"""
import json, sys, time
import numpy as np
from semantic_id.utils.metrics import collision_rate_per_level, distance_correlation, recall_at_k
X = np.load(sys.argv[1]); codes = np.load(sys.argv[2]); k = int(sys.argv[3])
out = {}
t = time.perf_counter(); out["collision_rate"] = collision_rate_per_level(codes)[-1]
out["t_collision"] = time.perf_counter() - t
t = time.perf_counter(); out["recall"] = recall_at_k(X, codes, k=k, sample_size=1000, seed=0)
out["t_recall"] = time.perf_counter() - t
t = time.perf_counter(); out["dcor"] = distance_correlation(X, codes, n_pairs=2000, seed=0)
out["t_dcor"] = time.perf_counter() - t
print(json.dumps(out))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--peer-python", default=None)
    parser.add_argument("--data", default=None, help="folder of the real embeddings")
    args = parser.parse_args()

    from sksemantic.metrics import collision_rate, distance_correlation, recall_at_k
    from sksemantic.quantization import RQKMeansEncoder

    E = np.load(data_dir(args.data) / "debian_emb.npy")
    args.peer_python = peers_python(args.peer_python)
    rng = np.random.default_rng(0)
    X = E[np.sort(rng.choice(len(E), args.n, replace=False))].astype(np.float32)
    codes = RQKMeansEncoder(n_levels=3, n_clusters=64, random_state=0).fit_transform(X)
    ours = {}
    t = time.perf_counter()
    ours["collision_rate"] = collision_rate(codes)
    ours["t_collision"] = time.perf_counter() - t
    t = time.perf_counter()
    ours["recall"] = recall_at_k(X, codes, k=args.k, n_queries=1000)
    ours["t_recall"] = time.perf_counter() - t
    t = time.perf_counter()
    ours["dcor"] = distance_correlation(X, codes, n_pairs=2000)
    ours["t_dcor"] = time.perf_counter() - t

    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "X.npy", X)
        np.save(Path(tmp) / "codes.npy", codes)
        res = subprocess.run(
            [args.peer_python, "-c", PEER, str(Path(tmp) / "X.npy"),
             str(Path(tmp) / "codes.npy"), str(args.k)],
            capture_output=True, text=True, check=True,
        )
    peer = json.loads(res.stdout.strip().splitlines()[-1])

    print(f"Debian embeddings, n={args.n}, RQKMeansEncoder(3 x 64), k={args.k}, 1000 queries")
    print(f"{'metric':<16} {'sksemantic':>11} {'semantic-id':>12} {'time ours':>10} "
          f"{'time peer':>10} {'speed-up':>9}")
    for key, label in (("collision_rate", "collision rate"), ("recall", f"recall@{args.k}"),
                       ("dcor", "distance corr.")):
        tk = "t_" + ("collision" if key == "collision_rate" else key)
        print(f"{label:<16} {ours[key]:>11.4f} {peer[key]:>12.4f} {ours[tk]:>9.3f}s "
              f"{peer[tk]:>9.3f}s {peer[tk] / max(ours[tk], 1e-9):>8.1f}x")
    if abs(ours["collision_rate"] - peer["collision_rate"]) > 1e-12:
        sys.exit("collision rates disagree")


if __name__ == "__main__":
    main()
