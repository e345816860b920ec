"""A folder of real photos through the workflow: detection and embedding shards, the faces
artifact, any method downstream, the people page; adding photos reruns only the shards
they land in, and embeds exactly the new photos."""

import shutil

import pytest

from facecluster.core import io, photos
from helpers import scheduled_rules, snakemake, write_config

pytestmark = pytest.mark.slow

PEOPLE = ["Al_Gore", "Amelia_Vega", "Amelie_Mauresmo", "Angela_Bassett", "Bill_Clinton"]
NEW = "Bill_Gates"


def test_photos_run_through_the_workflow_and_only_new_ones_are_embedded(shared_data, tmp_path):
    if importlib_missing():
        pytest.skip("face_recognition_models is not installed")
    subset = shared_data / "lfw_images_subset"
    folder = tmp_path / "photos"
    for name in PEOPLE:
        (folder / name).mkdir(parents=True)
        for p in sorted((subset / name).glob("*.jpg"))[:4]:
            shutil.copy(p, folder / name / p.name)
    workdir = tmp_path / "run"
    cfg = write_config(tmp_path / "photos.yaml", {
        "datasets": {"photos": {"images": {"path": str(folder), "labels_from": "parent_folder",
                                           "shards": 3}}},
        "experiments": {"hac": {"method": "hac"}},
        "run": {"datasets": ["photos"], "experiments": ["hac"]}})
    proc = snakemake(workdir, "all", configs=(cfg,))
    jobs = scheduled_rules(proc.stdout + proc.stderr)
    assert jobs["photos_detect"] == jobs["photos_embed"] == 3 and jobs["photos_people"] == 1
    summary = (workdir / "results" / "summary.tsv").read_text().splitlines()
    row = dict(zip(summary[0].split("\t"), summary[1].split("\t")))
    assert row["dataset"] == "photos" and float(row["F_P"]) > 60
    assert int(row["classes"]) == len(PEOPLE) and int(row["N"]) >= 19
    pages = list((workdir / "results").rglob("people/index.html"))
    assert len(pages) == 1 and "Person 1" in pages[0].read_text()

    # Three photos of a new person: the dry run schedules the shards they land in, no other.
    (folder / NEW).mkdir()
    added = sorted((subset / NEW).glob("*.jpg"))[:3]
    for p in added:
        shutil.copy(p, folder / NEW / p.name)
    shards = {photos.shard_of(f"{NEW}/{p.name}", 3) for p in added}
    dry = snakemake(workdir, "all", "-n", configs=(cfg,))
    planned = scheduled_rules(dry.stdout + dry.stderr)
    assert planned["photos_detect"] == planned["photos_embed"] == len(shards)
    first = {p: io.read_attrs(p)["counts"] for p in (workdir / "results").rglob("shard-*.h5")}
    snakemake(workdir, "all", configs=(cfg,))
    new_in = {s: sum(photos.shard_of(f"{NEW}/{p.name}", 3) == s for p in added) for s in shards}
    for path, before in first.items():
        shard = int(path.name.split("-")[1])
        counts = io.read_attrs(path)["counts"]
        kind = "embedded" if path.parent.name.startswith("embed-") else "detected"
        if shard in shards:  # the new photos embedded, the others read from the cache
            assert counts[kind] == new_in[shard] and counts["cached"] == before[kind], path
        else:
            assert counts == before, path
    summary = (workdir / "results" / "summary.tsv").read_text().splitlines()
    row = dict(zip(summary[0].split("\t"), summary[1].split("\t")))
    assert int(row["classes"]) == len(PEOPLE) + 1


def importlib_missing() -> bool:
    import importlib.util

    return importlib.util.find_spec("face_recognition_models") is None
