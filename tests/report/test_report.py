"""The HTML report on the tiny dataset: every figure drawn, a valid image, linked from the
report; unlabeled data gets the figures that apply."""

import shutil
import zipfile
from collections import Counter

import numpy as np
import pytest

from helpers import scheduled_rules, snakemake, write_config

pytestmark = pytest.mark.slow


def png_ok(path) -> bool:
    import matplotlib.image as mpimg

    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and mpimg.imread(path).ndim == 3


def test_the_report_on_tiny(tiny_reference, tmp_path):
    # On a copy of the reference run: the report adds one experiment and the figures.
    workdir = tmp_path / "run"
    shutil.copytree(tiny_reference, workdir, symlinks=True)
    cfg = write_config(tmp_path / "cfg.yaml", {
        "experiments": {"infomap-auto": {"method": "infomap", "threshold": "auto"}},
        "run": {"experiments": ["adanets", "knn-threshold", "infomap-auto"]}})
    plain = scheduled_rules(snakemake(workdir, "all", "-n", configs=(cfg,)).stdout)
    assert not any(rule.startswith("report") for rule in plain), "all draws no figure"
    assert "adanets_gcn_train" not in plain and plain["infomap_cluster"] == 1, "the copy is reused"
    snakemake(workdir, "report", configs=(cfg,))
    report = workdir / "results" / "report"
    expected = {"adanets": {"threshold.png", "sizes.png", "mistakes.png", "adanets_koff.png",
                            "adanets_graphs.png"},
                "knn-threshold": {"threshold.png", "sizes.png", "mistakes.png"},
                "infomap-auto": {"threshold.png", "sizes.png", "mistakes.png"},
                "_dataset": {"hard_bins.png", "stage_costs.png", "knn_recall.png"}}
    for folder, names in expected.items():
        got = {p.name for p in (report / "tiny" / folder).glob("*.png")}
        assert got == names, folder
        assert all(png_ok(report / "tiny" / folder / name) for name in names)
    assert png_ok(report / "scoreboard.png")
    snakemake(workdir, "report", "--report", str(tmp_path / "report.zip"), configs=(cfg,))
    with zipfile.ZipFile(tmp_path / "report.zip") as z:
        names = z.namelist()
        html = next(z.read(n).decode() for n in names if n.endswith("report.html"))
    # The zip files each result's figures under a folder named by a hash: count them.
    packed = Counter(n.rsplit("/", 1)[-1] for n in names if n.endswith((".png", ".tsv")))
    drawn = Counter(png for pngs in expected.values() for png in pngs)
    assert packed == drawn + Counter({"scoreboard.png": 1, "summary.tsv": 1})
    for png in packed:
        assert png in html, f"{png} is not linked from the report"


def test_the_report_of_unlabeled_faces_draws_what_applies(tmp_path):
    from facecluster.core import synthetic

    x, _ = synthetic.generate(synthetic.generator_params("tiny", dim=32), seed=3)["test"]
    np.save(tmp_path / "faces.npy", x)
    cfg = write_config(tmp_path / "mine.yaml", {
        "datasets": {"mine": {"input": {"path": str(tmp_path / "faces.npy")}}},
        "run": {"datasets": ["mine"], "experiments": ["knn-threshold"]}})
    snakemake(tmp_path / "run", "report", configs=(cfg,))
    folder = tmp_path / "run" / "results" / "report" / "mine" / "knn-threshold"
    assert {p.name for p in folder.glob("*.png")} == {"threshold.png", "sizes.png"}
    assert not list((tmp_path / "run" / "results" / "report" / "mine" / "_dataset").glob(
        "hard_bins.png"))
