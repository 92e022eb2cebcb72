"""Plot the newest k-means family table of RESULTS_rqkmeans.md: error against time.

Reads the first markdown table in ``benchmarks/RESULTS_rqkmeans.md`` that has the
columns ``bench_kmeans_family.py`` prints with ``--variants default,fast`` and faiss
(one row per shape and seed) and draws, per cell, each method's error and time relative
to one scikit-learn ``KMeans(n_init=1)`` per level: ``RQKMeansEncoder``'s defaults, its
``fast`` setting and faiss's ``Kmeans``. Nothing is fitted here.

Usage (from the repository root)::

    python benchmarks/plot_kmeans_family.py                 # -> docs/_static/kmeans_family.png
    python benchmarks/plot_kmeans_family.py --out family.png
"""

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("shape", "seed", "default / sk err", "fast / sk err", "faiss / sk err",
           "default / sk time", "fast / sk time", "faiss / sk time")
METHODS = (("default", "RQKMeansEncoder()", "o"),
           ("fast", "RQKMeansEncoder(max_samples=65536,\nrefine_iter=0, tol=1e-4)", "s"),
           ("faiss", "faiss Kmeans", "^"))
#: Errors above this are drawn at the top edge (their values in a note).
TOP = 1.09


def read_table(path):
    """Rows (dicts) of the first table of ``path`` with every column of ``COLUMNS``."""
    rows, header = [], None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            if rows:
                break
            header = None
        elif header is None and set(COLUMNS) <= set(cells):
            header = cells
        elif header is not None and not set(line.strip()) <= set("|-: "):
            rows.append(dict(zip(header, cells, strict=True)))
    if not rows:
        raise SystemExit(f"no table with the columns {COLUMNS} in {path}")
    return rows


def plot(rows, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    colors = dict(zip(shapes, plt.cm.tab10.colors, strict=False))
    fig, ax = plt.subplots(figsize=(8, 5.2))
    off_scale = []
    for method, label, marker in METHODS:
        for r in rows:
            x, y = float(r[f"{method} / sk time"]), float(r[f"{method} / sk err"])
            if y > TOP:  # off the scale: drawn at the top edge, listed in a note
                off_scale.append(f"{method}, {r['shape']} seed {r['seed']}: {y:.2f}")
                y = TOP
            ax.scatter(x, y, marker=marker, color=colors[r["shape"]], s=36, alpha=0.85,
                       edgecolor="black", linewidth=0.4, clip_on=False)
        ax.scatter([], [], marker=marker, color="white", edgecolor="black", label=label)
    for shape in shapes:
        ax.scatter([], [], marker="o", color=colors[shape], label=shape)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.axvline(0.1, color="grey", linestyle="--", linewidth=0.8)
    ax.set_ylim(top=TOP)
    ax.text(0.1, ax.get_ylim()[0], " 10x scikit-learn's speed", va="bottom", fontsize=8,
            color="grey")
    if off_scale:
        ax.text(0.99, 0.985, "at the top edge, errors of\n" + "\n".join(off_scale),
                transform=ax.transAxes, ha="right", va="top", fontsize=7)
    ax.set_xscale("log")
    ticks = [0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("fit time / scikit-learn's (one KMeans(n_init=1) per level; log scale)")
    ax.set_ylabel("error / scikit-learn's (below 1: lower error)")
    ax.set_title(f"Residual k-means, 3 x 256 codewords: {len(rows)} cells "
                 "(data shape x seed)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default=ROOT / "benchmarks" / "RESULTS_rqkmeans.md")
    p.add_argument("--out", default=ROOT / "docs" / "_static" / "kmeans_family.png")
    args = p.parse_args(argv)
    plot(read_table(args.results), args.out)


if __name__ == "__main__":
    main()
