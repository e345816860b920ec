"""Photos per second: face detection and embedding through the workflow, split into shards.

    python benchmarks/photos.py --photos 10000 --shards 2 4 [--cores 2]

builds a folder of ``--photos`` distinct photos from the 307 LFW photos of
``../shared/data/lfw_images_subset`` (each copy changed a little: mirrored, cropped by a
few pixels, brightened, re-encoded at another JPEG quality, so that no two share their
bytes and each is detected and embedded anew), then for each shard count runs the photo
stages (detect and embed per shard, then the merged faces artifact) with an empty cache
and writes ``RESULTS/photos.md``: wall time, photos per second, and the CPU seconds per
photo of detection and embedding (from each job's benchmark file).  Run from the
repository root.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

from facecluster.core import io, planning  # noqa: E402

SUBSET = ROOT.parent / "shared" / "data" / "lfw_images_subset"


def build_photos(n: int, folder: Path) -> Path:
    """``n`` distinct photos under ``folder/NAME/``, made from the subset (kept between
    runs: a folder already holding ``n`` photos is reused)."""
    from PIL import Image, ImageEnhance, ImageOps

    if folder.is_dir() and sum(1 for _ in folder.rglob("*.jpg")) == n:
        return folder
    if not SUBSET.is_dir():
        raise SystemExit(f"{SUBSET} is absent: the benchmark builds its photos from it")
    shutil.rmtree(folder, ignore_errors=True)
    sources = sorted(SUBSET.rglob("*.jpg"))
    for k in range(n):
        src = sources[k % len(sources)]
        j = k // len(sources)
        img = Image.open(src).convert("RGB")
        if j:
            if j % 2:
                img = ImageOps.mirror(img)
            crop = j % 7
            if crop:
                img = img.crop((crop, crop, img.width - crop, img.height - crop)).resize(
                    (250, 250), Image.BILINEAR)
            img = ImageEnhance.Brightness(img).enhance(0.9 + 0.02 * (j % 10))
        out = folder / src.parent.name / f"{src.stem}_v{j:03d}.jpg"
        out.parent.mkdir(parents=True, exist_ok=True)
        img.save(out, quality=80 + j % 15)
    return folder


def run(n: int, shards: int, cores: int, folder: Path, results: Path) -> dict:
    work = results / f"run-{n}-s{shards}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config = {"results": str(work / "results"),
              "datasets": {"photos": {"images": {"path": str(folder), "shards": shards,
                                                 "labels_from": "parent_folder"}}},
              "experiments": {"hac": {"method": "hac"}},
              "run": {"datasets": ["photos"], "experiments": ["hac"]}}
    cfg = work / "config.yaml"
    import yaml

    cfg.write_text(yaml.safe_dump(config))
    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    plan = planning.make_plan({**base, **config})
    faces = plan.ingest_inputs("photos")[0]
    command = [sys.executable, "-m", "snakemake", faces, "--cores", str(cores),
               "--configfile", str(cfg), "-d", str(ROOT)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"the workflow failed:\n{done.stderr[-3000:]}")
    cpu = {"detect": 0.0, "embed": 0.0}
    for job, j in plan.photo_jobs.items():
        bench = Path(f"{job}.benchmark.tsv")
        if j.kind in cpu and bench.exists():
            row = next(csv.DictReader(bench.open(), delimiter="\t"))
            cpu[j.kind] += float(row["cpu_time"])
    counts = io.read_attrs(faces)["counts"]
    return {"photos": n, "shards": shards, "cores": cores, "wall": wall,
            "per_second": n / wall, "detect_cpu": cpu["detect"] / n,
            "embed_cpu": cpu["embed"] / n, "faces": counts["faces"],
            "summary": io.read_attrs(faces)["summary"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=10000)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--results", default=str(HERE / "results-photos"))
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    results = Path(args.results)
    folder = build_photos(args.photos, results / f"photos-{args.photos}")
    rows = []
    for shards in args.shards:
        row = run(args.photos, shards, args.cores, folder, results)
        rows.append(row)
        print(f"{shards} shards: {row['wall']:.0f} s, {row['per_second']:.1f} photos/s "
              f"({row['summary']})", flush=True)
    lines = ["| photos | shards | cores | wall (s) | photos / s | CPU s / photo: detect | "
             "embed | faces |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['photos']} | {r['shards']} | {r['cores']} | {r['wall']:.0f} | "
                     f"{r['per_second']:.1f} | {r['detect_cpu']:.3f} | {r['embed_cpu']:.3f} | "
                     f"{r['faces']} |")
    out = results / "photos.md"
    previous = out.read_text() if out.exists() else ""
    out.write_text(previous + "\n".join(lines) + "\n\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
