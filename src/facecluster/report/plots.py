"""The report's figures (matplotlib, PNG), drawn from the attributes every method writes.

Each function takes plain data (no artifact paths) and writes one figure atomically:

- ``threshold_curves``: pairwise and BCubed P/R/F against a method's threshold, the
  train-side curve beside the test one, the chosen value marked;
- ``size_distribution``: predicted and true cluster sizes, log-log;
- ``merge_mistakes``: the predicted clusters that join most identities, and their members;
- ``hard_bins``: F_P and F_B per hard-cluster bin for every result of a dataset;
- ``scoreboard``: F_P against F_B of every result of every dataset;
- ``stage_costs``: wall time and peak memory of every stage of a run;
- ``knn_recall``: the kNN graphs' recall@k against exact search;
- ``cluster_count_curve``: unlabeled data: how the number of clusters moves with the threshold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core import io


def _figure(width: float = 7.0, height: float = 4.0, ncols: int = 1):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width, height), squeeze=False)
    return fig, axes[0]


def _save(fig, out: str | Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with io.atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def threshold_curves(key: str, train: list[dict] | None, test: list[dict] | None,
                     chosen, how: str, title: str, out: str | Path) -> None:
    """F (and P, R when the curves hold them) against ``key``: the train-side curve dashed,
    the test curve solid; ``chosen`` marked with ``how`` it was chosen."""
    fig, (ax,) = _figure()
    for curve, style, where in ((train, "--", "train side"), (test, "-", "test")):
        if not curve:
            continue
        x = [c[key] for c in curve]
        for metric, colour in (("f_pairwise", "C0"), ("f_bcubed", "C1")):
            ax.plot(x, [100 * c[metric] for c in curve], style, color=colour,
                    label=f"{'F_P' if metric == 'f_pairwise' else 'F_B'} ({where})")
        for metric, colour in (("p_pairwise", "C2"), ("r_pairwise", "C3")):
            if metric in curve[0]:
                ax.plot(x, [100 * c[metric] for c in curve], style, color=colour, alpha=0.5,
                        label=f"{metric.replace('_pairwise', '').upper()}_P ({where})")
    if chosen is not None:
        ax.axvline(float(chosen), color="k", lw=1)
        ax.text(float(chosen), 2, f" {key} = {chosen} ({how})", fontsize=8, va="bottom")
    ax.set_xlabel(key)
    ax.set_ylabel("%")
    ax.set_ylim(0, 101)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    _save(fig, out)


def size_distribution(pred: np.ndarray, truth: np.ndarray | None, title: str,
                      out: str | Path) -> None:
    """How many clusters have each size, predicted and (with labels) true, log-log."""
    fig, (ax,) = _figure()
    for labels, name, marker in ((pred, "predicted", "o"), (truth, "true", "x")):
        if labels is None:
            continue
        _, sizes = np.unique(labels, return_counts=True)
        values, counts = np.unique(sizes, return_counts=True)
        ax.loglog(values, counts, marker, label=f"{name}: {sizes.size} clusters", alpha=0.7)
    ax.set_xlabel("cluster size (faces)")
    ax.set_ylabel("clusters of that size")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    _save(fig, out)


def merge_mistakes(pred: np.ndarray, truth: np.ndarray, title: str, out: str | Path,
                   top: int = 12) -> list[dict]:
    """The predicted clusters that join the most identities: a bar per cluster, split by
    the identities it holds (largest first).  Returns them as rows."""
    from ..core.metrics import contingency

    table = contingency(truth, pred).tocsc()
    clusters = np.unique(pred)
    classes = np.unique(truth)
    mixed = []
    for j in range(table.shape[1]):
        rows, counts = table.indices[table.indptr[j]:table.indptr[j + 1]], \
            table.data[table.indptr[j]:table.indptr[j + 1]]
        if rows.size > 1:
            order = np.argsort(-counts)
            mixed.append({"cluster": int(clusters[j]), "size": int(counts.sum()),
                          "identities": [(int(classes[r]), int(c))
                                         for r, c in zip(rows[order], counts[order])]})
    mixed.sort(key=lambda m: (-len(m["identities"]), -m["size"]))
    mixed = mixed[:top]
    fig, (ax,) = _figure(7.0, 0.35 * max(len(mixed), 3) + 1.2)
    for y, m in enumerate(mixed):
        left = 0
        for k, (identity, count) in enumerate(m["identities"]):
            ax.barh(y, count, left=left, color=f"C{k % 10}", edgecolor="white")
            left += count
        ax.text(left, y, f" {len(m['identities'])} identities", va="center", fontsize=7)
    ax.set_yticks(range(len(mixed)), [f"cluster {m['cluster']}" for m in mixed], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("faces (each colour one true identity)")
    ax.set_title(title if mixed else f"{title}: no cluster joins two identities", fontsize=10)
    _save(fig, out)
    return mixed


def hard_bins(results: dict[str, dict], title: str, out: str | Path) -> None:
    """F_P and F_B on each hard-cluster bin (sz-1…sz-5, sp-1…sp-5) for every result."""
    fig, axes = _figure(12.0, 4.0, ncols=2)
    names = list(results)
    width = 0.8 / max(len(names), 1)
    for ax, metric in zip(axes, ("pairwise_f", "bcubed_f")):
        for k, name in enumerate(names):
            bins = [b for kind in ("size", "sparsity") for b in results[name].get(kind, [])]
            x = np.arange(len(bins)) + k * width
            ax.bar(x, [100 * b.get(metric, np.nan) for b in bins], width, label=name)
            ax.set_xticks(np.arange(len(bins)) + 0.4 - width / 2, [b["bin"] for b in bins],
                          fontsize=8)
        ax.set_ylabel("F_P (%)" if metric == "pairwise_f" else "F_B (%)")
        ax.set_ylim(0, 101)
    axes[0].legend(fontsize=6, ncol=2)
    fig.suptitle(title, fontsize=10)
    _save(fig, out)


def scoreboard(points: list[dict], out: str | Path) -> None:
    """F_P against F_B of every result: ``points`` [{dataset, experiment, f_p, f_b}]."""
    fig, (ax,) = _figure(7.0, 5.5)
    datasets = list(dict.fromkeys(p["dataset"] for p in points))
    experiments = list(dict.fromkeys(p["experiment"] for p in points))
    markers = "o^sDv<>pP*"
    for d, dataset in enumerate(datasets):
        for p in (p for p in points if p["dataset"] == dataset):
            ax.scatter(100 * p["f_p"], 100 * p["f_b"], marker=markers[d % len(markers)],
                       s=30, color=f"C{experiments.index(p['experiment']) % 10}")
            ax.annotate(p["experiment"], (100 * p["f_p"], 100 * p["f_b"]), fontsize=6,
                        xytext=(3, 2), textcoords="offset points")
    for d, dataset in enumerate(datasets):
        ax.scatter([], [], marker=markers[d % len(markers)], color="grey", label=dataset)
    ax.set_xlabel("F_P (%)")
    ax.set_ylabel("F_B (%)")
    ax.legend(fontsize=7)
    ax.set_title("Every result: pairwise against BCubed F" if points
                 else "No labeled result to place", fontsize=10)
    _save(fig, out)


def stage_costs(stages: list[dict], title: str, out: str | Path) -> None:
    """Wall time and peak memory per stage: ``stages`` [{stage, s, max_rss}] (MiB)."""
    fig, axes = _figure(11.0, 0.3 * max(len(stages), 4) + 1.5, ncols=2)
    names = [s["stage"] for s in stages]
    axes[0].barh(names, [s["s"] for s in stages], color="C0")
    axes[0].set_xlabel("wall time (s)")
    axes[1].barh(names, [s["max_rss"] / 1024 for s in stages], color="C1")
    axes[1].set_xlabel("peak memory (GiB)")
    for ax in axes:
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(title, fontsize=10)
    _save(fig, out)


def knn_recall(graphs: list[dict], out: str | Path) -> None:
    """recall@k of every kNN graph: ``graphs`` [{name, recall, index}]."""
    fig, (ax,) = _figure(7.0, 0.35 * max(len(graphs), 3) + 1.2)
    ax.barh([g["name"] for g in graphs], [g["recall"] for g in graphs], color="C2")
    for y, g in enumerate(graphs):
        ax.text(g["recall"], y, f" {g['recall']:.3f} ({g['index']})", va="center", fontsize=7)
    ax.set_xlim(0, 1.15)
    ax.set_xlabel("recall@k against exact search (1: exact)")
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    _save(fig, out)


def cluster_count_curve(key: str, counts: list[tuple[float, int]], chosen, title: str,
                        out: str | Path) -> None:
    """Unlabeled data: the number of clusters against the threshold."""
    fig, (ax,) = _figure()
    ax.plot([c[0] for c in counts], [c[1] for c in counts], "-o", ms=3)
    if chosen is not None:
        ax.axvline(float(chosen), color="k", lw=1)
    ax.set_xlabel(key)
    ax.set_ylabel("clusters")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    _save(fig, out)
