"""The method contract end to end: a method added from a test module through the registry
alone runs through the workflow; a default changed in its code renames its artifacts only;
and the workflow run twice from scratch writes byte-identical results."""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, scheduled_rules, snakemake, write_config

pytestmark = pytest.mark.slow

TOY = REPO / "tests" / "methods" / "toy_method.py"


def toy_run(workdir: Path, module_dir: Path, *args: str):
    cfg = write_config(workdir.parent / f"{workdir.name}-toy.yaml", {
        "method_modules": ["toy_method"],
        "experiments": {"toy": {"method": "toy"}},
        "run": {"experiments": ["toy", "knn-threshold"]}})
    return snakemake(workdir, *args, configs=(cfg,), env={"PYTHONPATH": str(module_dir)})


def test_a_method_from_a_test_module_runs_through_the_workflow(tmp_path):
    """toy_method.py touches no file of the package; the workflow plans its stage, runs it
    as a rule, scores it and puts it on the summary beside the baseline."""
    from facecluster.core import io

    modules = tmp_path / "modules"
    modules.mkdir()
    shutil.copy(TOY, modules / "toy_method.py")
    workdir = tmp_path / "run"
    proc = toy_run(workdir, modules, "all")
    assert scheduled_rules(proc.stdout + proc.stderr)["toy_cluster"] == 1
    rows = {r["experiment"]: r for r in csv.DictReader(
        open(workdir / "results" / "summary.tsv"), delimiter="\t")}
    assert rows["toy"]["method"] == "toy" and rows["toy"]["params"] == "link_above=0.7"
    assert 0 < float(rows["toy"]["F_B"]) <= 100 and "knn-threshold" in rows
    # Its clusters are what its function computes on the shared kNN artifact.
    sys.path.insert(0, str(modules))
    try:
        import toy_method
    finally:
        sys.path.remove(str(modules))
    (clusters,) = (workdir / "results").rglob("toy-*/clusters.h5")
    knn = io.read_arrays(clusters.parent.parent / "knn.h5")
    np.testing.assert_array_equal(io.read_array(clusters, "labels"),
                                  toy_method.nearest_neighbour_clusters(knn["ids"], knn["sims"], 0.7))

    # A default changed in the method's code renames its stage's artifacts, and only those:
    # the kNN graph and the baseline are kept.
    (modules / "toy_method.py").write_text(TOY.read_text().replace(
        "Param(0.7, number(-1, 1)", "Param(0.75, number(-1, 1)"))
    jobs = scheduled_rules(toy_run(workdir, modules, "all", "-n").stdout)
    assert jobs == {"toy_cluster": 1, "metrics": 1, "summary": 1, "all": 1}


def test_the_command_line_lists_and_runs_a_method_from_a_module(tmp_path, clustered):
    x, _ = clustered
    np.save(tmp_path / "faces.npy", x)
    env = {**os.environ, "PYTHONPATH": str(TOY.parent)}
    listed = subprocess.run([sys.executable, "-m", "facecluster", "methods", "--method-module",
                             "toy_method"], capture_output=True, text=True, env=env)
    assert listed.returncode == 0 and "toy " in listed.stdout and "adanets" in listed.stdout
    done = subprocess.run([sys.executable, "-m", "facecluster", "cluster", "--features",
                           str(tmp_path / "faces.npy"), "--method", "toy", "--method-module",
                           "toy_method", "--param", "link_above=0.9", "--param", 'knn={"k": 5}',
                           "--out", str(tmp_path / "c.tsv")],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "c.tsv").read_text().splitlines()
    assert table[0] == "index\tcluster" and len(table) == len(x) + 1


def test_two_runs_from_scratch_write_byte_identical_results(tiny_reference, tmp_path):
    """The whole tiny workflow twice, in two fresh directories: every cluster file, cluster
    table and metrics file, and the summary, are the same bytes."""
    second = tmp_path / "again"
    snakemake(second, "all")
    names = ("clusters.h5", "clusters.tsv", "metrics.json")
    first = sorted(p.relative_to(tiny_reference) for name in names
                   for p in (tiny_reference / "results").rglob(name))
    assert len(first) == 9 and first == sorted(p.relative_to(second) for name in names
                                               for p in (second / "results").rglob(name))
    for path in first + [Path("results/summary.tsv")]:
        assert (tiny_reference / path).read_bytes() == (second / path).read_bytes(), path


def test_every_held_out_choice_is_none_without_a_ladder():
    """A method's ``held_out_choice`` answers None for final-stage inputs that hold no
    held-out ladder (a fixed threshold, or one chosen on the train part)."""
    from facecluster import registry

    declared = [registry.get(name) for name in registry.names()
                if registry.get(name).held_out_choice is not None]
    assert {m.name for m in declared} >= {"adanets", "face_transformer", "gcn_ve", "ndde_tpdi"}
    for method in declared:
        assert method.held_out_choice({"features": "f.zarr"}, 1000, 0.0) is None, method.name


def test_each_held_out_choice_reads_its_final_stages_ladder(tmp_path):
    """A ladder peaked at the middle of each trained method's grid, the next value 0.015
    lower: its ``held_out_choice`` names the threshold as its ``scan`` does and takes the
    peak for the held-out part's size; for four times that size GCN-V and the Face
    Transformer hedge by 0.02 (two doublings) and take the next value, Ada-NETS by 0.01
    (one) and keeps the peak."""
    from facecluster.core import io
    from facecluster.methods import face_transformer, gcn_ve
    from facecluster.methods.adanets import METHOD as ADANETS
    from facecluster.methods.adanets.settings import THETA_GRID

    for method, key, grid, hedged in (
            (face_transformer.METHOD, "tau", face_transformer.TAU_GRID, True),
            (gcn_ve.METHOD, "tau", gcn_ve.TAU_GRID, True), (ADANETS, "theta", THETA_GRID, False)):
        grid = [float(v) for v in grid]
        i = len(grid) // 2
        means = {grid[i]: 1.0, grid[i + 1]: 0.985}
        curve = [{key: v, "f_pairwise": means.get(v, 0.5), "f_bcubed": means.get(v, 0.5)}
                 for v in grid]
        path = tmp_path / f"{method.name}.json"
        io.write_json(path, {"ladder": [{"n_faces": 800, "draws": 1, "scores": curve}]})
        assert method.held_out_choice({key: str(path)}, 800, 0.0) == (key, grid[i]), method.name
        larger = method.held_out_choice({key: str(path)}, 3200, 0.0)
        assert larger == (key, grid[i + 1] if hedged else grid[i]), method.name
