"""Ada-NETS's own report figures: the Q(j) curves and k_off labels of the train part, the
adaptive filter's k̂_off beside them, and the quality of every graph it built (SNR,
Q_before, Q_after: the paper's Tables 3 and 9)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core import io
from ...report.plots import _figure, _save


def _part(path: str) -> str:
    """The dataset part an artifact belongs to (train, test, val-…, fit-…)."""
    return next((p for p in Path(path).parts if p in ("train", "test") or p[:4] in ("fit-",
                                                                                   "val-")), "?")


def own_model(paths: list[str], lineage: dict) -> list[str]:
    """``paths`` less the other seeds' models' artifacts: with ``theta_seeds`` > 1 the
    lineage also holds the filters and graphs of the models whose curves only chose θ
    (``theta_pool``).  The experiment's own train-side artifacts sit in folders above the
    pool's; the other parts' are kept."""
    pools = lineage.get("adanets.theta_pool", [])
    if not pools:
        return list(paths)
    pool = Path(pools[0])
    return [p for p in paths if _part(p) != _part(str(pool)) or Path(p).parent in pool.parents]


def figures(lineage: dict, out: Path) -> list[str]:
    written = []
    koffs = lineage.get("adanets.koff", [])
    k_hats = own_model(lineage.get("adanets.filter_infer", []), lineage)
    if koffs:
        arrays = io.read_arrays(koffs[0], ["quality", "k_off"])
        q, k_off = arrays["quality"], arrays["k_off"]
        fig, axes = _figure(11.0, 4.0, ncols=2)
        j = np.arange(1, q.shape[1] + 1)
        axes[0].plot(j, q.mean(axis=0), label="mean Q(j)")
        axes[0].fill_between(j, *np.quantile(q, [0.25, 0.75], axis=0), alpha=0.3,
                             label="25-75%")
        axes[0].set_xlabel("j (candidates kept)")
        axes[0].set_ylabel("Q(j) (Eq. 3)")
        axes[0].legend(fontsize=8)
        bins = np.arange(1, q.shape[1] + 2) - 0.5
        axes[1].hist(k_off, bins=bins, alpha=0.6, label="k_off (train labels)", density=True)
        for path in k_hats:
            axes[1].hist(io.read_array(path, "k_off"), bins=bins, alpha=0.5, density=True,
                         label=f"k̂_off ({_part(path)})")
        axes[1].set_xlabel("candidates kept")
        axes[1].legend(fontsize=7)
        fig.suptitle("Ada-NETS: the quality criterion and the adaptive filter", fontsize=10)
        _save(fig, out / "adanets_koff.png")
        written.append("adanets_koff.png")
    graphs = own_model(lineage.get("adanets.graph", []), lineage)
    quality = [(p, io.read_attrs(p)) for p in graphs]
    quality = [(p, a) for p, a in quality if a.get("snr") is not None or a.get("q_after")]
    if quality:
        fig, axes = _figure(11.0, 3.5, ncols=2)
        names = [f"{a.get('builder')} ({_part(p)})" for p, a in quality]
        axes[0].barh(names, [a.get("snr") or 0 for _, a in quality], color="C0")
        axes[0].set_xlabel("SNR (correct / noise edges)")
        q_names = [n for n, (_, a) in zip(names, quality) if a.get("q_after") is not None]
        q_vals = [a for _, a in quality if a.get("q_after") is not None]
        y = np.arange(len(q_vals))
        axes[1].barh(y - 0.2, [a["q_before"] for a in q_vals], 0.4, label="Q_before")
        axes[1].barh(y + 0.2, [a["q_after"] for a in q_vals], 0.4, label="Q_after")
        axes[1].set_yticks(y, q_names)
        axes[1].legend(fontsize=8)
        for ax in axes:
            ax.tick_params(axis="y", labelsize=7)
        fig.suptitle("Ada-NETS: the graphs it built", fontsize=10)
        _save(fig, out / "adanets_graphs.png")
        written.append("adanets_graphs.png")
    return written
