"""The summary table: chosen thresholds shown, and the mean ± sd of seed sweeps."""

import json

import numpy as np
import pytest

from facecluster.core import io
from facecluster.report.summary import format_seed_table, seed_rows, summary_rows, write_summary


def result(folder, f_p, f_b, chosen=None, swept=None, sweep=None, experiment="e"):
    folder.mkdir(parents=True)
    io.write_arrays(folder / "clusters.h5", {"labels": np.zeros(3, np.int32)},
                    {"method": "m", "chosen": chosen or {}})
    (folder / "metrics.json").write_text(json.dumps(
        {"pairwise_f": f_p, "bcubed_f": f_b, "nmi": 0.5, "n_clusters": 10}))
    return {"dataset": "d", "experiment": experiment, "method": "m",
            "summary": {"tau": "auto", "k": 5}, "metrics": str(folder / "metrics.json"),
            "quality": None, "sweep": sweep, "swept": swept or {}}


def test_a_chosen_threshold_shows_beside_its_setting(tmp_path):
    rows = summary_rows([result(tmp_path / "a", 0.9, 0.8, chosen={"tau": 0.62})])
    assert rows[0]["params"] == "tau=auto(0.62) k=5"
    assert rows[0]["F_P"] == 0.9 and rows[0]["SNR"] is None
    rows = summary_rows([result(tmp_path / "b", 0.9, 0.8, chosen={"tau": 0.9995}),
                         result(tmp_path / "c", 0.9, 0.8, chosen={"tau": 0.6})])
    assert [r["params"] for r in rows] == ["tau=auto(0.9995) k=5", "tau=auto(0.60) k=5"], \
        "a value the grid holds beyond two decimals is not rounded to 1.00"


def test_seed_variants_give_a_mean_and_a_sample_sd(tmp_path):
    entries = [result(tmp_path / f"s{seed}-b{b}", f_p, 0.5, sweep="s", experiment=f"s.b-{b}.seed-{seed}",
                      swept={"b": b, "seed": seed})
               for b, scores in ((1, (0.80, 0.84, 0.82)), (2, (0.5, 0.5, 0.5)))
               for seed, f_p in zip((0, 1, 2), scores)]
    entries.append(result(tmp_path / "alone", 0.7, 0.7))  # not a seed sweep: no mean row
    rows = summary_rows(entries)
    seeds = seed_rows(entries, rows)
    assert [(r["experiment"], r["seeds"]) for r in seeds] == [("s.b-1", "0,1,2"), ("s.b-2", "0,1,2")]
    mean, sd = seeds[0]["F_P"]
    assert mean == pytest.approx(0.82) and sd == pytest.approx(0.02)
    assert seeds[1]["F_P"] == (pytest.approx(0.5), 0.0)
    table = format_seed_table(seeds)
    assert "| d | s.b-1 | m | 0,1,2 | 82.00 ± 2.00 | 50.00 ± 0.00 |" in table
    md = write_summary(rows, tmp_path / "summary.tsv", tmp_path / "summary.md", seeds)
    assert "Mean ± sd over seeds" in md and (tmp_path / "summary.md").read_text() == md
    assert "±" not in (tmp_path / "summary.tsv").read_text()
