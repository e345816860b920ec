"""benchmarks/report.py on a hand-made results tree: stage tables, exponents, scores."""

import importlib.util
import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_report", ROOT / "benchmarks" / "report.py")
report = importlib.util.module_from_spec(spec)
sys.modules["bench_report"] = report  # dataclasses look their module up there
spec.loader.exec_module(report)

HEADER = "s\th:m:s\tmax_rss\tcpu_time\tstage\n"


def bench(path: Path, stage: str, wall: float, rss: float, cpu: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{wall}\t0:00:01\t{rss}\t{cpu}\t{stage}\n")


def clusters(folder: Path, attrs: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / "clusters.h5", "w") as f:
        f.attrs["facecluster"] = json.dumps(attrs)


def dataset(root: Path, name: str, n: int, scale: float, recall: float) -> None:
    d = root / name
    for part, size in (("test", n), ("train", 500)):
        (d / part).mkdir(parents=True)
        (d / part / "manifest.json").write_text(json.dumps({"n": size}))
    knn = d / "test" / "knn-k80-00000000"
    link = knn / "ss-0.3-11111111" / "and-b0.5-22222222" / "graph-33333333" / "gcn-44444444" \
        / "link-c80-auto-55555555"
    bench(d / "test" / "ingest.benchmark.tsv", "ingest", 1.0 * scale, 100, 1.0)
    bench(knn / "knn.benchmark.tsv", "knn", 4.0 * scale ** 2, 300 * scale, 7.0)
    bench(link.parents[2] / "k_hat.benchmark.tsv", "adanets.filter_infer", 2.0 * scale,
          2048 * scale, 3.0)
    bench(link / "clusters.benchmark.tsv", "adanets.link", 3.0 * scale, 200, 3.0)
    for tau in ("threshold-auto-66666666", "threshold-0.6-77777777"):
        bench(knn / tau / "clusters.benchmark.tsv", "knn_threshold.cluster", 0.5, 50, 0.5)
    bench(d / "train" / "knn-k80-00000000" / "ss-0.3-8" / "koff-b0.5-9" / "filter-z"
          / "filter.benchmark.tsv", "adanets.filter_train", 20.0, 500, 30.0)
    bench(d / "train" / "knn-k80-00000000" / "threshold-auto-12345678"
          / "calibration.benchmark.tsv", "knn_threshold.calibrate", 5.0, 80, 5.0)
    with h5py.File(knn / "knn.h5", "w") as f:
        index = ({"index": "ivf", "nlist": 64, "nprobe": 8} if n > 2000 else
                 {"index": "ivfpq", "nlist": 16, "nprobe": 4, "pq_m": 8, "refine_factor": 10})
        f.attrs["facecluster"] = json.dumps({**index, "recall_at_k": recall})
    for leaf, method, chosen, f_p in ((link, "adanets", {"theta": 0.8}, 0.9),
                                      (knn / "threshold-auto-66666666", "knn_threshold",
                                       {"threshold": 0.6}, 0.7)):
        clusters(leaf, {"method": method, "chosen": chosen})
        (leaf / "metrics.json").write_text(json.dumps(
            {"pairwise_f": f_p, "bcubed_f": 0.5, "nmi": 0.25, "n_clusters": 1234}))


def test_report_tables_exponents_and_scores(tmp_path):
    dataset(tmp_path, "big", 4000, 4.0, 0.9)
    dataset(tmp_path, "small", 1000, 1.0, 0.97)
    runs = report.collect(tmp_path)
    assert [r.n_test for r in runs] == [1000, 4000] and runs[0].n_train == 500
    assert set(runs[0].tables[("", "test")]) == {"ingest", "knn"}
    assert set(runs[0].tables[("adanets", "test")]) == {"filter_infer", "link"}
    assert runs[1].tables[("", "test")]["knn"].wall == 64.0
    assert runs[1].tables[("adanets", "test")]["filter_infer"].rss_mib == 8192
    assert set(runs[0].tables[("knn_threshold", "test")]) == {
        "cluster (threshold-0.6)", "cluster (threshold-auto)"}, "two jobs: told by folder"
    assert set(runs[0].tables[("knn_threshold", "train")]) == {"calibrate"}
    assert set(runs[0].tables[("adanets", "train")]) == {"filter_train"}
    text = report.render(runs)
    lines = text.splitlines()
    start = lines.index("**adanets: inference (test part)**")
    table = lines[start:lines.index("", start + 2)]
    knn_row = next(line for line in table if line.startswith("| knn |"))
    assert knn_row.endswith("| 2.00 |")  # 4 s → 64 s for 4× the faces
    assert next(line for line in table if line.startswith("| ingest")).endswith("| 1.00 |")
    rows = [line.split(" | ")[0] for line in table if line.startswith("| ")]
    assert rows.index("| ingest") < rows.index("| knn") < rows.index("| filter_infer") \
        < rows.index("| link")
    total = next(line for line in table if line.startswith("| **total**"))
    assert "**10.0** / 14.0 / 2.00 (peak)" in total  # 1 + 4 + 2 + 3 s; the largest peak
    assert ("| big | 4,000 | IVF nlist 64 nprobe 8 | 0.900 | adanets link-c80-auto (theta 0.80) "
            "| 90.00 | 50.00 |") in text
    assert ("| small | 1,000 | IVF-PQ nlist 16 nprobe 4 PQ 8×4 bit, re-rank 10·k | 0.970 | "
            "adanets link-c80-auto (theta 0.80) |") in text
    assert "knn_threshold threshold-auto (threshold 0.60) | 70.00 |" in text


def test_growth_exponent():
    n = np.array([1e4, 1e5, 1e6])
    assert report.growth_exponent(n, 3 * n ** 1.15) == pytest.approx(1.15)
    assert np.isnan(report.growth_exponent([10], [1.0]))
    assert np.isnan(report.growth_exponent([10, 10], [1.0, 2.0]))


def test_missing_results_directory_is_a_clear_error(tmp_path, capsys):
    assert report.main([str(tmp_path / "nowhere")]) == 2
    assert "no such results directory" in capsys.readouterr().err


def test_theta_scan_scores_the_test_linkage_over_theta(tmp_path):
    from facecluster.core import io

    # Two identities of three faces: within one, cosines 0.89 and 0.8; across, at most 0.2.
    c, s = np.sqrt(0.8), np.sqrt(0.2)
    e = np.array([[1, 0, 0, 0], [c, s, 0, 0], [c, 0, s, 0],
                  [0, 0, 0, 1], [0, s, 0, c], [0, 0, s, c]], np.float32)
    labels = np.array([0, 0, 0, 1, 1, 1])
    ids = np.argsort(-(e @ e.T), axis=1, kind="stable")
    test = tmp_path / "d" / "test"
    test.mkdir(parents=True)
    (test / "manifest.json").write_text(json.dumps({"n": 6}))
    io.write_arrays(test / "features.zarr", {"features": e, "labels": labels})
    io.write_arrays(test / "structure.h5", {"ids": ids.astype(np.int32)})
    io.write_arrays(test / "embedding.zarr", {"features": e})
    io.write_arrays(test / "link" / "clusters.h5", {"labels": labels},
                    {"theta": 0.7, "k": 6, "inputs": {"embedding": str(test / "embedding.zarr"),
                                                      "cands": str(test / "structure.h5")}})
    lines = report.theta_scan(tmp_path, report.collect(tmp_path))
    row = next(line for line in lines if line.startswith("| d |"))
    cells = row.strip("| ").split(" | ")
    assert cells[1] == "0.70"
    scores = dict(zip(report.THETA_SCAN, cells[2:]))
    # Above every within-identity cosine nothing links: singletons, pairwise F 0.
    assert scores[0.98].startswith("0.0 /")
    # At θ 0.70 each identity is one component, and the two stay apart.
    assert scores[0.70] == "100.0 / 100.0"


def test_experiment_labels_name_the_method_the_folder_and_what_was_chosen(tmp_path):
    for leaf, attrs, label in (
            ("link-c80-auto-tol0.01-1a2b3c4d", {"method": "adanets", "chosen": {"theta": 0.89}},
             "adanets link-c80-auto-tol0.01 (theta 0.89)"),
            ("link-k80-0.9-1a2b3c4d", {"method": "adanets", "theta": 0.9},
             "adanets link-k80-0.9"),
            ("threshold-auto-1a2b3c4d", {"method": "knn_threshold",
                                         "chosen": {"threshold": 0.62}},
             "knn_threshold threshold-auto (threshold 0.62)")):
        clusters(tmp_path / leaf, attrs)
        assert report._experiment_label(tmp_path / leaf / "metrics.json") == label


def test_two_experiments_of_one_kind_keep_both_rows(tmp_path):
    """Two folders that read alike without their hash (the same stage of two experiments of
    one method, e.g. two similarity sizes) must not overwrite each other's row."""
    dataset(tmp_path, "small", 1000, 1.0, 0.97)
    knn = tmp_path / "small" / "test" / "knn-k80-00000000"
    for folder, wall, f_p in (("d-learned-aaaaaaaa", 10.0, 0.6), ("d-learned-bbbbbbbb", 7.0, 0.7)):
        bench(knn / folder / "distances.benchmark.tsv", "ndde_tpdi.distances", wall, 100, wall)
        leaf = knn / folder / "link-tpdi-approx-0.7-cccccccc"
        clusters(leaf, {"method": "ndde_tpdi"})
        (leaf / "metrics.json").write_text(json.dumps(
            {"pairwise_f": f_p, "bcubed_f": 0.5, "nmi": 0.25, "n_clusters": 10}))
    (run,) = report.collect(tmp_path)
    table = run.tables[("ndde_tpdi", "test")]
    assert {k: v.wall for k, v in table.items()} == {
        "distances (d-learned-aaaaaaaa)": 10.0, "distances (d-learned-bbbbbbbb)": 7.0}
    assert {k: v["pairwise_f"] for k, v in run.scores.items() if k.startswith("ndde")} == {
        "ndde_tpdi link-tpdi-approx-0.7 [d-learned-aaaaaaaa]": 0.6,
        "ndde_tpdi link-tpdi-approx-0.7 [d-learned-bbbbbbbb]": 0.7}
