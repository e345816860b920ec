"""Photos in: detection, alignment and embedding against the real LFW photos and their dlib
vectors (``../shared/data``; skipped where it is absent), and the bad inputs a photo folder
holds."""

import json
import shutil

import numpy as np
import pytest

from facecluster import cli
from facecluster.core import io, photos

pytest.importorskip("dlib")
if photos.importlib.util.find_spec("face_recognition_models") is None:
    pytest.skip("face_recognition_models is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def models():
    return photos.Models()


@pytest.fixture
def subset(shared_data):
    return shared_data / "lfw_images_subset"


@pytest.fixture(scope="module")
def dev(request):
    from helpers import SHARED_DATA

    path = SHARED_DATA / "lfw_dlib128_dev.npz"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    with np.load(path, allow_pickle=False) as d:
        x, names = d["X"], d["fname"]
    return {str(f): x[i] for i, f in enumerate(names)}


def spec(path, **kw):
    return photos.checked_spec({"path": str(path), **kw})


def central_face(record) -> int:
    """The face nearest the photo's centre: the one LFW labels."""
    cx, cy = record["width"] * record["scale"] / 2, record["height"] * record["scale"] / 2
    d = [((f["box"][0] + f["box"][2]) / 2 - cx) ** 2 + ((f["box"][1] + f["box"][3]) / 2 - cy) ** 2
         for f in record["faces"]]
    return int(np.argmin(d))


def embed_one(models, path, settings):
    record = photos.detect_photo(models, str(path), settings)
    if not record["faces"]:
        return record, None
    image, _, _ = photos.read_image(str(path), settings["max_side"], settings["max_pixels"])
    vectors = np.stack([models.embed(image, f["box"], np.array(f["landmarks"]), 0)
                        for f in record["faces"]])
    return record, vectors


def check_against_dev(models, dev, paths):
    settings = spec(paths[0].parent)
    worst, compared = 0.0, 0
    for path in paths:
        record, vectors = embed_one(models, path, settings)
        if vectors is None:
            continue  # LFW's own pipeline fell back to a fixed box there (data README)
        worst = max(worst, float(np.abs(vectors[central_face(record)] - dev[path.name]).max()))
        compared += 1
    return worst, compared


def test_the_central_face_reproduces_lfw_dlib_vectors(models, subset, dev):
    """The product's embedding of the face nearest the centre equals the row of
    lfw_dlib128_dev.npz with that fname (a sample of 12 photos; all 307 in the slow test)."""
    paths = sorted(subset.rglob("*.jpg"))[::25]
    worst, compared = check_against_dev(models, dev, paths)
    assert compared >= 11 and worst <= 1e-5


@pytest.mark.slow
def test_every_subset_photo_reproduces_its_lfw_dlib_vector(models, subset, dev):
    worst, compared = check_against_dev(models, dev, sorted(subset.rglob("*.jpg")))
    assert compared >= 300 and worst <= 1e-5


def single_face_photos(models, subset, n):
    out = []
    for path in sorted(subset.rglob("*.jpg")):
        record, vectors = embed_one(models, path, spec(subset))
        if len(record["faces"]) == 1:
            out.append((path, vectors[0]))
        if len(out) == n:
            return out
    raise AssertionError("not enough single-face photos")


def test_a_collage_of_four_faces_gives_four_faces(models, subset, tmp_path):
    """Four real single-face photos side by side on one canvas: four faces, each embedded
    next to its own photo's vector."""
    from PIL import Image

    singles = single_face_photos(models, subset, 4)
    canvas = Image.new("RGB", (500, 500), (255, 255, 255))
    for k, (path, _) in enumerate(singles):
        canvas.paste(Image.open(path), ((k % 2) * 250, (k // 2) * 250))
    canvas.save(tmp_path / "collage.png")
    record, vectors = embed_one(models, tmp_path / "collage.png", spec(tmp_path))
    assert record["status"] == "ok" and len(record["faces"]) == 4
    own = np.stack([v for _, v in singles])
    # Each face found is nearest (Euclidean, dlib's measure) to the photo it came from.
    d = np.linalg.norm(vectors[:, None, :] - own[None], axis=2)
    assert sorted(d.argmin(axis=1).tolist()) == [0, 1, 2, 3]
    assert d.min(axis=1).max() < 0.2  # dlib's same-person threshold is 0.6


def test_an_exif_rotated_copy_gives_the_same_embedding(models, subset, tmp_path):
    """A photo stored turned a quarter with EXIF orientation 6 (display it turned back) is
    read upright: the same pixels, the same face, the same vector."""
    from PIL import Image

    path, _ = single_face_photos(models, subset, 1)[0]
    upright = np.asarray(Image.open(path).convert("RGB"))
    Image.fromarray(upright).save(tmp_path / "upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.fromarray(np.rot90(upright)).save(tmp_path / "rotated.png", exif=exif)
    image, scale, size = photos.read_image(str(tmp_path / "rotated.png"), 2000, 10 ** 9)
    assert np.array_equal(image, upright) and scale == 1.0 and size == (250, 250)
    a = embed_one(models, tmp_path / "upright.png", spec(tmp_path))[1]
    b = embed_one(models, tmp_path / "rotated.png", spec(tmp_path))[1]
    assert a.shape == b.shape == (1, 128) and np.array_equal(a, b)


def test_image_modes_all_read_as_the_same_rgb(subset, tmp_path):
    """Greyscale, palette, CMYK, RGBA and 16-bit inputs become 8-bit RGB of the right size."""
    from PIL import Image

    source = Image.open(next(subset.rglob("*.jpg"))).convert("RGB")
    source.convert("L").save(tmp_path / "grey.png")
    source.convert("P").save(tmp_path / "palette.gif")
    source.convert("CMYK").save(tmp_path / "cmyk.jpg")
    source.convert("RGBA").save(tmp_path / "alpha.png")
    source.convert("RGB").save(tmp_path / "photo.webp")
    deep = (np.asarray(source.convert("L"), dtype=np.uint16) * 257)
    Image.fromarray(deep).save(tmp_path / "grey16.png")
    for name in ("grey.png", "palette.gif", "cmyk.jpg", "alpha.png", "photo.webp", "grey16.png"):
        image, scale, size = photos.read_image(str(tmp_path / name), 2000, 10 ** 9)
        assert image.dtype == np.uint8 and image.shape == (250, 250, 3), name
        assert scale == 1.0 and size == (250, 250)
    grey = photos.read_image(str(tmp_path / "grey.png"), 2000, 10 ** 9)[0]
    assert np.array_equal(grey[..., 0], grey[..., 2])
    assert np.array_equal(photos.read_image(str(tmp_path / "grey16.png"), 2000, 10 ** 9)[0], grey)


def test_a_huge_photo_is_detected_on_a_bounded_downscale(models, subset, tmp_path):
    """A 4,000-pixel JPEG is decoded at a reduced size (never whole), detected there, and
    its faces reported in the photo's own pixels; a huge non-JPEG is refused, named."""
    from PIL import Image

    path, _ = single_face_photos(models, subset, 1)[0]
    Image.open(path).resize((4000, 4000), Image.BILINEAR).save(tmp_path / "big.jpg")
    settings = spec(tmp_path, max_side=600)
    image, scale, size = photos.read_image(str(tmp_path / "big.jpg"), 600, 10 ** 9)
    assert max(image.shape[:2]) <= 600 and size == (4000, 4000) and scale == image.shape[1] / 4000
    record = photos.detect_photo(models, str(tmp_path / "big.jpg"), settings)
    assert record["status"] == "ok" and len(record["faces"]) == 1
    # The face is about as large in the photo's pixels as the 250-pixel original's × 16.
    small = photos.detect_photo(models, str(path), settings)["faces"][0]["size"]
    assert record["faces"][0]["size"] == pytest.approx(16 * small, rel=0.15)
    Image.new("RGB", (3000, 3000)).save(tmp_path / "huge.png")
    refused = photos.detect_photo(models, str(tmp_path / "huge.png"),
                                  spec(tmp_path, max_pixels=10 ** 6))
    assert refused["status"] == "too_large" and "huge.png" in refused["message"]


def photo_folder(subset, tmp_path, people_, per_person=3):
    folder = tmp_path / "photos"
    for name in people_:
        (folder / name).mkdir(parents=True)
        for p in sorted((subset / name).glob("*.jpg"))[:per_person]:
            shutil.copy(p, folder / name / p.name)
    return folder


PEOPLE = ["Al_Gore", "Amelie_Mauresmo", "Angela_Bassett"]


def test_bad_files_are_recorded_and_the_run_finishes(subset, tmp_path):
    """A corrupt JPEG, a text file named .jpg, an empty file, a photo without a face and a
    duplicate photo: each recorded with a message naming it; the good faces are embedded,
    labelled by folder; the summary line counts them."""
    from PIL import Image

    folder = photo_folder(subset, tmp_path, PEOPLE)
    good = sorted(folder.rglob("*.jpg"))
    (folder / "junk").mkdir()
    (folder / "junk" / "corrupt.jpg").write_bytes(good[0].read_bytes()[:300])
    (folder / "junk" / "notes.jpg").write_text("not a photo")
    (folder / "junk" / "empty.jpg").write_bytes(b"")
    Image.new("RGB", (200, 200), (90, 140, 200)).save(folder / "junk" / "sky.png")
    shutil.copy(good[1], folder / "junk" / "copy.jpg")
    settings = {"path": str(folder), "labels_from": "parent_folder"}
    faces = photos.embed_photos(settings, tmp_path / "cache", tmp_path / "work")
    rows = {r["photo"]: r for r in read_tsv(tmp_path / "work" / "photos.tsv")}
    assert rows["junk/empty.jpg"]["status"] == "empty"
    assert rows["junk/notes.jpg"]["status"] == "unreadable"
    assert "notes.jpg" in rows["junk/notes.jpg"]["message"]
    assert rows["junk/corrupt.jpg"]["status"] in ("unreadable", "no_face")
    assert rows["junk/sky.png"]["status"] == "no_face"
    assert rows["junk/copy.jpg"]["status"] == "duplicate"
    assert good[1].name in rows["junk/copy.jpg"]["message"]
    attrs = io.read_attrs(faces)
    assert attrs["counts"]["duplicate"] == 1 and attrs["counts"]["empty"] == 1
    assert "1 duplicate" in attrs["summary"] and "1 empty" in attrs["summary"]
    arrays = io.read_arrays(faces)
    assert arrays["X"].shape[1] == 128 and arrays["X"].shape[0] >= 9
    assert all(i.split("#")[0].split("/")[0] in PEOPLE for i in arrays["ids"])
    names = attrs["label_names"]
    assert sorted(names) == PEOPLE
    assert all(names[y] == i.split("/")[0] for y, i in zip(arrays["y"], arrays["ids"]))


def read_tsv(path):
    lines = path.read_text().splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, line.split("\t"))) for line in lines[1:]]


def test_the_python_api_gives_the_faces_of_a_folder(subset, tmp_path):
    import facecluster

    folder = photo_folder(subset, tmp_path, PEOPLE)
    faces = facecluster.faces_from_photos(folder, cache=tmp_path / "cache",
                                          labels_from="parent_folder")
    n = faces["features"].shape[0]
    assert faces["features"].shape == (n, 128) and faces["ids"].shape == (n,) and n >= 9
    assert [faces["label_names"][y] for y in faces["labels"]] == \
        [i.split("/")[0] for i in faces["ids"]]
    labels = facecluster.cluster(faces["features"], "hac", normalise="center_l2")
    assert labels.shape == (n,)


def test_quality_gates_keep_rejected_faces_with_the_reason(subset, tmp_path):
    folder = photo_folder(subset, tmp_path, PEOPLE)
    settings = {"path": str(folder), "min_face_size": 10 ** 4}
    with pytest.raises(photos.PhotoError, match="no face to cluster"):
        photos.embed_photos(settings, tmp_path / "cache", tmp_path / "work")
    settings = {"path": str(folder), "min_sharpness": 1e9, "min_score": -100}
    with pytest.raises(photos.PhotoError):
        photos.embed_photos(settings, tmp_path / "cache", tmp_path / "work2")
    settings = {"path": str(folder), "min_face_size": 1}
    photos.embed_photos(settings, tmp_path / "cache", tmp_path / "work3")
    rows = read_tsv(tmp_path / "work3" / "faces.tsv")
    assert rows and all(r["status"] == "kept" for r in rows)
    # Gates apply after embedding: a stricter gate reads the cache, it embeds nothing.
    sizes = sorted(float(r["size"]) for r in rows)
    settings = {"path": str(folder), "min_face_size": sizes[len(sizes) // 2]}
    faces = photos.embed_photos(settings, tmp_path / "cache", tmp_path / "work4")
    rows = read_tsv(tmp_path / "work4" / "faces.tsv")
    rejected = [r for r in rows if r["status"] == "rejected"]
    assert rejected and all("< min_face_size" in r["reason"] for r in rejected)
    assert io.read_arrays(faces)["X"].shape[0] == len(rows) - len(rejected)
    embed = io.read_attrs(tmp_path / "work4" / "embed.h5")["counts"]
    assert embed["embedded"] == 0 and embed["cached"] > 0


def test_the_cache_embeds_only_new_photos_and_not_moved_ones(subset, tmp_path):
    folder = photo_folder(subset, tmp_path, PEOPLE)
    cache = tmp_path / "cache"
    photos.embed_photos({"path": str(folder)}, cache, tmp_path / "w1")
    first = io.read_attrs(tmp_path / "w1" / "embed.h5")["counts"]
    assert first["cached"] == 0 and first["embedded"] >= 8
    extra = sorted((subset / "Amanda_Bynes").glob("*.jpg"))[:3]
    (folder / "new").mkdir()
    for p in extra:
        shutil.copy(p, folder / "new" / p.name)
    moved = sorted((folder / "Al_Gore").glob("*.jpg"))[0]
    moved.rename(folder / "renamed.jpg")
    photos.embed_photos({"path": str(folder)}, cache, tmp_path / "w2")
    detect = io.read_attrs(tmp_path / "w2" / "detect.h5")["counts"]
    embed = io.read_attrs(tmp_path / "w2" / "embed.h5")["counts"]
    assert detect["detected"] == 3 and embed["embedded"] == 3
    assert embed["cached"] == first["embedded"]
    # A photo without a face, renamed: read from the cache, its message names the new name.
    from PIL import Image

    Image.new("RGB", (120, 120), (200, 180, 160)).save(folder / "wall.png")
    photos.embed_photos({"path": str(folder)}, cache, tmp_path / "w3")
    (folder / "wall.png").rename(folder / "plain.png")
    photos.embed_photos({"path": str(folder)}, cache, tmp_path / "w4")
    rows = {r["photo"]: r for r in read_tsv(tmp_path / "w4" / "photos.tsv")}
    assert rows["plain.png"]["status"] == "no_face" and "plain.png" in rows["plain.png"]["message"]
    assert io.read_attrs(tmp_path / "w4" / "detect.h5")["counts"]["detected"] == 0


def test_shards_follow_names_so_adding_photos_moves_none():
    names = [f"p/{i}.jpg" for i in range(200)]
    before = {n: photos.shard_of(n, 4) for n in names}
    assert set(before.values()) == {0, 1, 2, 3}
    listing = [photos.Photo(n, n, 1, 1) for n in names]
    parts = [photos.shard_photos(listing, s, 4) for s in range(4)]
    assert sorted(p.name for part in parts for p in part) == sorted(names)
    assert photos.listing_digest(parts[0]) != photos.listing_digest(parts[1])
    changed = [photos.Photo(p.name, p.path, 2, 1) if k == 0 else p for k, p in enumerate(parts[0])]
    assert photos.listing_digest(changed) != photos.listing_digest(parts[0])


def test_bad_settings_are_refused_before_any_work(tmp_path):
    with pytest.raises(photos.PhotoError, match="not found"):
        photos.checked_spec({"path": str(tmp_path / "nowhere")})
    with pytest.raises(photos.PhotoError, match="unknown keys"):
        photos.checked_spec({"path": str(tmp_path), "detecter": "hog"})
    with pytest.raises(photos.PhotoError, match="detector"):
        photos.checked_spec({"path": str(tmp_path), "detector": "yolo"})
    with pytest.raises(photos.PhotoError, match="shards"):
        photos.checked_spec({"path": str(tmp_path), "shards": 0})


def test_a_list_file_names_photos_relative_to_itself(subset, tmp_path):
    folder = photo_folder(subset, tmp_path, PEOPLE[:1])
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.jpg"))
    (folder / "list.txt").write_text("# my photos\n" + "\n".join(names) + "\nmissing.jpg\n")
    listing = photos.list_photos({"path": str(folder / "list.txt")})
    assert [p.name for p in listing] == sorted(names + ["missing.jpg"])
    assert listing[-1].size == -1 or listing[0].size > 0


def test_the_command_line_clusters_a_photo_folder_and_writes_the_people_page(subset, tmp_path):
    """`facecluster cluster --images DIR` without Snakemake: a table of face ids and
    clusters, and the people page (thumbnails, faces.tsv, faces.json)."""
    from facecluster.core.metrics import evaluate

    crowd = ["Al_Gore", "Amelia_Vega", "Amelie_Mauresmo", "Angela_Bassett", "Bill_Clinton",
             "Bill_Gates", "Bob_Graham", "Charles_Taylor"]
    folder = photo_folder(subset, tmp_path, crowd, per_person=4)
    out = tmp_path / "clusters.tsv"
    assert cli.main(["cluster", "--images", str(folder), "--method", "hac",
                     "--cache", str(tmp_path / "cache"), "--out", str(out),
                     "--people", str(tmp_path / "people")]) == 0
    rows = read_tsv(out)
    assert len(rows) >= 31 and all("#" in r["id"] for r in rows)
    truth = [crowd.index(r["id"].split("/")[0]) for r in rows]
    scores = evaluate(np.array(truth), np.array([int(r["cluster"]) for r in rows]))
    assert scores["pairwise_precision"] == 1.0 and scores["pairwise_f"] > 0.7
    sizes = np.bincount([int(r["cluster"]) for r in rows])
    n_people, n_alone = int((sizes > 1).sum()), int((sizes == 1).sum())
    page = (tmp_path / "people" / "index.html").read_text()
    assert page.count("<section>") == n_people + (n_alone > 0) and "Person 1" in page
    assert f"{n_alone} faces" in page if n_alone else "Seen once" not in page
    mapping = json.loads((tmp_path / "people" / "faces.json").read_text())
    assert sum(len(v) for v in mapping["photos"].values()) == len(rows)
    thumbs = list((tmp_path / "people" / "thumbs").glob("*.jpg"))
    assert len(thumbs) == len(rows)
    from PIL import Image

    assert Image.open(thumbs[0]).size == (96, 96)
    assert json.loads((tmp_path / "people" / "faces.json").read_text())["photos"]
