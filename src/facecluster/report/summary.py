"""One table across every dataset and experiment, as TSV and Markdown; and where a sweep
ran an experiment with several seeds, the mean ± sd of its scores over them.

It reads only the attributes every method writes: the metrics, the ``chosen`` values of
the clusters artifact (a threshold set to ``auto`` shows as ``auto(0.62)``), and the
graph quality of an artifact the method names (``snr``, ``q_before``, ``q_after``).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from ..core import io

# (column, metrics key, format); percentages as the papers print them.
COLUMNS = [
    ("F_P", "pairwise_f", "pct"),
    ("P_P", "pairwise_precision", "pct"),
    ("R_P", "pairwise_recall", "pct"),
    ("F_B", "bcubed_f", "pct"),
    ("P_B", "bcubed_precision", "pct"),
    ("R_B", "bcubed_recall", "pct"),
    ("NMI", "nmi", "pct"),
    ("clusters", "n_clusters", "int"),
    ("singletons", "n_singletons", "int"),
    ("classes", "n_true_classes", "int"),
    ("N", "n_items", "int"),
]
# Quality of the graph a method built (Ada-NETS §4.1), when it built one.
GRAPH_COLUMNS = [("SNR", "snr", "float"), ("Q_before", "q_before", "float"),
                 ("Q_after", "q_after", "float")]


def shown_value(value) -> str:
    """A chosen value as tables print it: floats with two decimals, or four significant
    digits where two would hide it (0.9995 is not 1.00); anything else as ``str``."""
    if not isinstance(value, float):
        return str(value)
    return f"{value:.2f}" if abs(value - round(value, 2)) < 1e-9 else f"{value:.4g}"


def summary_rows(entries: list[dict]) -> list[dict]:
    """Read each entry's metrics JSON; one row per (dataset, experiment)."""
    rows = []
    for entry in entries:
        scores = io.read_json(entry["metrics"])
        params = dict(entry.get("summary", {}))
        clusters_attrs = io.read_attrs(Path(entry["metrics"]).with_name("clusters.h5"))
        chosen = clusters_attrs.get("chosen", {})
        for key, value in chosen.items():  # show the value chosen on training data
            params[key] = f"{params.get(key, 'auto')}({shown_value(value)})"
        row = {"dataset": entry["dataset"], "experiment": entry["experiment"],
               "method": entry["method"],
               "params": " ".join(f"{k}={v}" for k, v in params.items())}
        for column, key, _ in COLUMNS:
            row[column] = scores.get(key)
        quality = io.read_attrs(entry["quality"]) if entry.get("quality") else {}
        for column, key, _ in GRAPH_COLUMNS:
            row[column] = quality.get(key)
        if quality.get("noise_edges") == 0 and quality.get("n_edges"):
            row["SNR"] = float("inf")  # every edge joins one identity
        row["health"] = health_findings(entry, scores)
        row["notes"] = list(clusters_attrs.get("notes") or [])
        rows.append(row)
    return rows


def health_findings(entry: dict, scores: dict) -> list[dict]:
    """Every health finding (``core.health``) of one result: its clusters', its graph's and
    its dataset parts' (the ingest manifests), without repeats."""
    from ..core.health import collect

    found = collect(io.read_attrs(Path(entry["metrics"]).with_name("clusters.h5")))
    if entry.get("quality"):
        found += collect(io.read_attrs(entry["quality"]))
    for manifest in entry.get("manifests") or []:
        if Path(manifest).exists():
            found += collect(io.read_json(manifest))
    if scores.get("n_unscored"):
        found.append({"check": "unscored", "message": f"{scores['n_unscored']} faces of unknown "
                                                      f"identity (label < 0) are not scored"})
    unique = {(f["check"], f["message"]): f for f in found}
    return list(unique.values())


def _cell(value, kind: str) -> str:
    if value is None:
        return "-"
    if value == float("inf"):
        return "inf"
    if kind == "pct":
        return f"{100.0 * value:.2f}"
    if kind == "float":
        return f"{value:.4g}"
    return str(int(value))


def format_table(rows: list[dict]) -> tuple[str, str]:
    """(TSV text, Markdown text) of the rows."""
    columns = COLUMNS + GRAPH_COLUMNS
    head = ["dataset", "experiment", "method", "params"] + [c for c, _, _ in columns] + ["health"]
    body = [[r["dataset"], r["experiment"], r["method"], r["params"]]
            + [_cell(r.get(c), kind) for c, _, kind in columns]
            + [",".join(f["check"] for f in r.get("health", [])) or "-"] for r in rows]
    tsv = "\n".join("\t".join(line) for line in [head] + body) + "\n"
    md_lines = ["| " + " | ".join(head) + " |",
                "|" + "|".join("---" if i < 4 else "---:" for i in range(len(head))) + "|"]
    md_lines += ["| " + " | ".join(line) + " |" for line in body]
    return tsv, "\n".join(md_lines) + "\n"


# The columns averaged over seeds.
SEED_COLUMNS = [("F_P", "pct"), ("F_B", "pct"), ("NMI", "pct"), ("clusters", "int")]


def seed_rows(entries: list[dict], rows: list[dict]) -> list[dict]:
    """Mean ± sd (sample, n − 1) of the scores of the variants of a sweep that differ only
    in ``seed``: one row per (dataset, sweep, the other swept values), for two seeds or more.
    Each entry's ``sweep`` and ``swept`` (the values its variant set) say which go together.
    """
    groups: dict[tuple, list[dict]] = {}
    for entry, row in zip(entries, rows):
        swept = dict(entry.get("swept") or {})
        if "seed" not in swept:
            continue
        seed = swept.pop("seed")
        key = (entry["dataset"], entry["sweep"], json.dumps(swept, sort_keys=True))
        groups.setdefault(key, []).append((seed, row))
    out = []
    for (dataset, sweep, rest), members in groups.items():
        if len(members) < 2:
            continue
        name = sweep + "".join(f".{k}-{v}" for k, v in json.loads(rest).items())
        agg = {"dataset": dataset, "experiment": name, "method": members[0][1]["method"],
               "seeds": ",".join(str(seed) for seed, _ in members)}
        for column, _ in SEED_COLUMNS:
            values = [row[column] for _, row in members if row.get(column) is not None]
            agg[column] = ((statistics.mean(values), statistics.stdev(values))
                           if len(values) >= 2 else None)
        out.append(agg)
    return out


def format_seed_table(rows: list[dict]) -> str:
    """Markdown: mean ± sd over seeds."""
    head = ["dataset", "experiment", "method", "seeds"] + [c for c, _ in SEED_COLUMNS]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---" if i < 4 else "---:" for i in range(len(head))) + "|"]
    for r in rows:
        cells = [r["dataset"], r["experiment"], r["method"], r["seeds"]]
        for column, kind in SEED_COLUMNS:
            if r[column] is None:
                cells.append("-")
            elif kind == "pct":
                cells.append(f"{100 * r[column][0]:.2f} ± {100 * r[column][1]:.2f}")
            else:
                cells.append(f"{r[column][0]:.0f} ± {r[column][1]:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def hard_cluster_table(entries: list[dict]) -> str:
    """Markdown: F_P / F_B of every labeled result on each hard-cluster bin (identities by
    size, smallest first: sz-1…sz-5; by sparsity, sparsest first: sp-1…sp-5), or ''."""
    rows = []
    for entry in entries:
        hard = io.read_json(entry["metrics"]).get("hard_clusters")
        if not hard:
            continue
        bins = [b for kind in ("size", "sparsity") for b in hard.get(kind, [])]
        rows.append((entry["dataset"], entry["experiment"], bins))
    if not rows:
        return ""
    names = [b["bin"] for b in rows[0][2]]
    lines = ["| dataset | experiment | " + " | ".join(names) + " |",
             "|---|---|" + "---:|" * len(names)]
    for dataset, experiment, bins in rows:
        cells = [f"{100 * b['pairwise_f']:.1f} / {100 * b['bcubed_f']:.1f}" if b["n_items"]
                 else "-" for b in bins]
        lines.append(f"| {dataset} | {experiment} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(rows: list[dict], tsv_path: str | Path, md_path: str | Path,
                  seeds: list[dict] | None = None, hard: str = "") -> str:
    """Write both tables atomically (the Markdown one with the mean ± sd over seeds and the
    hard-cluster bins below it, when there are any); return the Markdown text."""
    tsv, md = format_table(rows)
    if any(r.get("SNR") == float("inf") for r in rows):
        md += "\nSNR inf: the graph has no edge between two identities.\n"
    notes = [(r, note) for r in rows for note in r.get("notes", [])]
    if notes:
        md += "\nNotes:\n\n" + "".join(f"- **{r['dataset']} / {r['experiment']}**: {note}\n"
                                       for r, note in notes)
    findings = [(r, f) for r in rows for f in r.get("health", [])]
    if findings:
        md += "\nHealth checks (README: Health checks):\n\n" + "".join(
            f"- **{r['dataset']} / {r['experiment']}** ({f['check']}): {f['message']}\n"
            for r, f in findings)
    if seeds:
        md += "\nMean ± sd over seeds (a difference smaller than the sd is not a result):\n\n" \
            + format_seed_table(seeds)
    if hard:
        md += ("\nHard clusters, F_P / F_B per fifth of the true identities (sz: by size, "
               "smallest first; sp: by sparsity, sparsest first):\n\n" + hard)
    for path, text in ((tsv_path, tsv), (md_path, md)):
        with io.atomic_path(path) as tmp:
            Path(tmp).write_text(text)
    return md
