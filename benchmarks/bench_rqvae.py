"""RQVAEEncoder side by side with RQKMeansEncoder and semantic-id 0.2.5's RQVAE.

Each method runs in its own process (semantic-id in the peers venv), on the same data
and code size (3 levels x 256 codes) and, for the two RQ-VAEs, the same architecture
(MLP 512-256-128, latent 32), batch size, learning rate and number of epochs. Printed
per method: fit time, time per epoch, peak memory (max RSS of the process, data
included, measured after fit), CPU seconds per epoch (all threads: a load-independent
cost; wall time on this shared machine depends on the other jobs), reconstruction MSE
(mean over samples and features, and relative to the data's variance), collision rate (1 - unique codes / rows) and per-level codebook usage
(fraction of each level's codes used by the data).

``--threads N`` sets torch's thread count in every child (both RQ-VAEs alike); by
default each uses torch's own (one per core). On a machine shared with other busy
processes, one thread is often much faster than two (the threads wait for each other
at the end of every operation); the header prints the load average at the start.

With ``--time-cap``, when an RQ-VAE's full run would exceed the cap (estimated from one
epoch on a 10,000-row subset), both RQ-VAEs train the same smaller number of epochs;
the fit time for the requested epochs is then extrapolated from the measured time per
epoch, and the table says so.

Run from the repository root::

    PYTHONPATH=. python benchmarks/bench_rqvae.py --data debian
    PYTHONPATH=. python benchmarks/bench_rqvae.py --data random --time-cap 900

The real embeddings are read from ``$SKSEMANTIC_DATA`` (``../shared/data`` on the
project's machines; see ``benchmarks/_common.py``).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _memory import peak_rss_mb  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import data_dir, peers_python  # noqa: E402

ARCH = dict(hidden=[512, 256, 128], latent=32, batch_size=1024, lr=1e-3)


def load(name, n, dim):
    if name == "random":
        return np.random.default_rng(0).standard_normal((n, dim), dtype=np.float32)
    X = np.load(data_dir() / f"{name}_emb.npy").astype(np.float32)
    return X[:n] if n else X


def peak_mb():
    return peak_rss_mb()  # VmHWM: ru_maxrss counts the parent's memory too


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def summarize(X, codes, decode, n_clusters):
    """Quality numbers; the reconstruction is decoded in blocks to bound memory."""
    sq = 0.0
    for start in range(0, len(X), 10_000):
        block = X[start : start + 10_000]
        sq += float(np.sum((block - decode(codes[start : start + 10_000])) ** 2,
                           dtype=np.float64))
    mse = sq / X.size
    var = float(np.mean(X.var(axis=0, dtype=np.float64)))
    n_unique = len(np.unique(codes, axis=0))
    return dict(
        mse=mse,
        rel_mse=mse / var,
        collision_rate=1 - n_unique / len(X),
        usage=[len(np.unique(codes[:, j])) / k for j, k in enumerate(n_clusters)],
    )


def timed_fit(fit, X):
    """Wall and CPU seconds (all threads) of ``fit(X)``, and the peak RSS after it."""
    t, c = time.perf_counter(), cpu_seconds()
    fit(X)
    return dict(fit=time.perf_counter() - t, fit_cpu=cpu_seconds() - c, peak_mb=peak_mb())


# ---------------------------------------------------------------- children
def child_sksemantic_rqvae(X, epochs, seed):
    from sksemantic.quantization import RQVAEEncoder

    enc = RQVAEEncoder(
        n_levels=3, n_clusters=256, hidden_dims=ARCH["hidden"], latent_dim=ARCH["latent"],
        batch_size=ARCH["batch_size"], learning_rate=ARCH["lr"], max_epochs=epochs,
        random_state=seed,
    )
    out = timed_fit(enc.fit, X)
    t = time.perf_counter()
    codes = enc.transform(X)
    out["encode"] = time.perf_counter() - t
    out.update(summarize(X, codes, enc.inverse_transform, enc.n_clusters_))
    durs = enc.history_[:, "dur"]
    out.update(epochs=len(durs), per_epoch=float(np.mean(durs)),
               first_epoch_usage=enc.history_[0, "codebook_usage"],
               best_epoch=enc.best_epoch_,
               monitor_collisions=[round(r, 4) for r in enc.history_[:, "monitor_collisions"]])
    return out


def child_rqkmeans(X, epochs, seed):
    from sksemantic.quantization import RQKMeansEncoder

    enc = RQKMeansEncoder(n_levels=3, n_clusters=256, random_state=seed)
    out = timed_fit(enc.fit, X)
    t = time.perf_counter()
    codes = enc.transform(X)
    out["encode"] = time.perf_counter() - t
    out.update(summarize(X, codes, enc.inverse_transform, enc.n_clusters_))
    out.update(epochs=None, per_epoch=None)
    return out


def child_semantic_id_rqvae(X, epochs, seed):
    import contextlib
    import io

    import torch
    from semantic_id import RQVAE

    torch.manual_seed(seed)  # semantic-id takes no seed; this is its own process
    model = RQVAE(
        in_dim=X.shape[1], num_emb_list=[256] * 3, e_dim=ARCH["latent"],
        layers=ARCH["hidden"], batch_size=ARCH["batch_size"], lr=ARCH["lr"], epochs=epochs,
        kmeans_init=True, device="cpu",
        # verbose=True is needed for its best-checkpoint logic to see collisions: with
        # verbose=False it restores the model of the first epoch.
        verbose=True,
    )
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        out = timed_fit(model.fit, X)
    t = time.perf_counter()
    codes = model.encode(X).astype(np.int64)
    out["encode"] = time.perf_counter() - t
    out.update(summarize(X, codes, model.decode, [256] * 3))
    out.update(epochs=epochs, per_epoch=out["fit"] / epochs)
    return out


CHILDREN = {
    "sksemantic-rqvae": child_sksemantic_rqvae,
    "rqkmeans": child_rqkmeans,
    "semantic-id-rqvae": child_semantic_id_rqvae,
}


def run_child(method, data, n, dim, epochs, seed, timeout, threads=0):
    python = sys.executable
    if method == "semantic-id-rqvae":
        python = peers_python()
        if python is None:
            raise SystemExit("semantic-id needs the peers environment (see _common.py)")
    cmd = [python, os.path.abspath(__file__), "--child", method, "--data", data,
           "--n", str(n), "--dim", str(dim), "--epochs", str(epochs), "--seed", str(seed),
           "--threads", str(threads)]
    env = dict(os.environ, PYTHONPATH=ROOT)
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if res.returncode:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr else "failed"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="debian", help="debian, wordnet20k, wordnet or random")
    p.add_argument("--n", type=int, default=0, help="rows (random: default 100,000)")
    p.add_argument("--dim", type=int, default=768, help="columns of random data")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", default="sksemantic-rqvae,rqkmeans,semantic-id-rqvae")
    p.add_argument("--time-cap", type=float, default=0,
                   help="seconds per RQ-VAE fit; fewer epochs (extrapolated) beyond it")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads in every child (default: torch's own)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    n = args.n or (100_000 if args.data == "random" else 0)

    if args.child:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        X = load(args.data, n, args.dim)
        print(json.dumps(CHILDREN[args.child](X, args.epochs, args.seed)))
        return

    X = load(args.data, n, args.dim)
    n_rows, dim = X.shape
    del X
    print(f"# {args.data}: {n_rows} x {dim}, 3 levels x 256 codes, {args.epochs} epochs "
          f"(RQ-VAEs: MLP {ARCH['hidden']}, latent {ARCH['latent']}, batch "
          f"{ARCH['batch_size']}, lr {ARCH['lr']}); torch threads: "
          f"{args.threads or 'default'}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores", flush=True)
    methods = args.methods.split(",")
    epochs, note = args.epochs, ""
    if args.time_cap:
        # One epoch of each RQ-VAE on a 10,000-row subset, scaled to every row, decides a
        # common number of epochs that fits the cap (the same for both, so that their
        # quality compares at equal training).
        probe_n = min(n_rows, 10_000)
        for method in methods:
            if method == "rqkmeans":
                continue
            probe = run_child(method, args.data, probe_n, dim, 1, args.seed,
                              timeout=args.time_cap, threads=args.threads)
            if "error" in probe:
                continue
            est = probe["per_epoch"] * n_rows / probe_n
            print(f"# probe {method}: ~{est:.1f} s per epoch on {n_rows} rows", flush=True)
            if est * epochs > args.time_cap:
                epochs = max(1, int(args.time_cap // est))
        if epochs < args.epochs:
            note = f"trained {epochs}/{args.epochs} epochs; {args.epochs}-epoch fit extrapolated"
    rows = []
    for method in methods:
        timeout = 3 * args.time_cap if args.time_cap else None
        t = time.perf_counter()
        res = run_child(method, args.data, n, dim, epochs, args.seed, timeout, args.threads)
        res.update(method=method, wall=time.perf_counter() - t,
                   note=note if method != "rqkmeans" else "")
        if "error" not in res and res.get("per_epoch") and epochs < args.epochs:
            res["fit_extrapolated"] = res["fit"] + res["per_epoch"] * (args.epochs - epochs)
        rows.append(res)
        print(json.dumps(res), flush=True)

    print(f"# load average at the end {os.getloadavg()[0]:.1f}")
    print()
    print("| method | fit s | s/epoch | CPU s/epoch | encode s | peak MB | MSE | rel. MSE "
          "| collisions | usage per level | note |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['method']} | - | - | - | - | - | - | - | - | - | {r['error']} |")
            continue
        fit = f"{r['fit']:.1f}"
        if "fit_extrapolated" in r:
            fit = f"{r['fit']:.1f} ({args.epochs} ep. ~{r['fit_extrapolated']:.0f})"
        per_epoch = f"{r['per_epoch']:.1f}" if r.get("per_epoch") else "-"
        cpu_epoch = f"{r['fit_cpu'] / r['epochs']:.1f}" if r.get("epochs") else "-"
        usage = "/".join(f"{u:.0%}" for u in r["usage"])
        print(f"| {r['method']} | {fit} | {per_epoch} | {cpu_epoch} | {r['encode']:.1f} | "
              f"{r['peak_mb']:.0f} | {r['mse']:.5f} | {r['rel_mse']:.3f} | "
              f"{r['collision_rate']:.4f} | {usage} | {r['note']} |")


if __name__ == "__main__":
    main()
