"""Photos in: face detection, alignment and embedding from image folders.

A dataset may be a folder of photos (``images:``) instead of a features file.  Three
stages turn it into the features every method reads, each a rule with a cached artifact:

1. ``detect`` (one job per shard of the photo list): each photo is read (EXIF orientation
   applied; greyscale, palette, CMYK, alpha all made RGB), downscaled when larger than
   ``max_side`` (JPEGs decode at a reduced size, so memory stays bounded), and searched by
   dlib's HOG detector (``detector: hog``, upsampled ``upsample`` times) or its CNN (MMOD)
   detector (``cnn``); every face gets dlib's 5 landmarks, a face size (the box's shorter
   side in the photo's pixels) and a sharpness score (the variance of the Laplacian of the
   face, grey, resized to 64×64);
2. ``embed`` (one job per shard): dlib's 128-D ResNet on each face aligned by its landmarks
   (``jitter``: dlib's jittered re-sampling count, 0 by default);
3. ``faces``: the shards merged; duplicate photos (same bytes) and faces failing the
   quality gates (``min_face_size``, ``min_score``, ``min_sharpness``) are listed with the
   reason in ``faces.tsv`` and left out; the rest become ``faces.h5`` (``X`` N×128, ``ids``
   ``photo-path#face-index``, ``y`` from the parent folder's name with
   ``labels_from: parent_folder``), which the ingest stage reads like any features file.

With the defaults (HOG, upsample 1, no jitter) this is the pipeline the dlib embeddings of
``lfw_dlib128_dev.npz`` came from, and it reproduces them exactly.

Every result of detection and embedding is also kept per photo in a cache keyed by the
photo's content (sha256) and the settings: adding photos and running again embeds only the
new ones, and a moved or renamed photo is not embedded again.  A photo that cannot be used
(empty, corrupt, not an image, unreadable, too large, no face) is recorded with a message
naming it, and the run goes on.

The models ship in the PyPI package ``face_recognition_models`` (read from its folder; the
package itself is never imported, since it needs ``pkg_resources``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
from pathlib import Path

import numpy as np

from . import io
from .progress import Progress, log

VERSION = 1  # bump when detection or embedding changes what they write

EXTENSIONS = ("jpg", "jpeg", "png", "bmp", "gif", "tif", "tiff", "webp")

SPEC_DEFAULTS = {
    "path": None,                 # a folder, or a text file listing one photo per line
    "recursive": True,            # a folder's sub-folders too
    "extensions": list(EXTENSIONS),
    "labels_from": None,          # parent_folder: a photo's identity is its folder's name
    "shards": 4,                  # detection and embedding jobs
    "cache": None,                # the per-photo cache folder (default {results}/photo-cache)
    "detector": "hog",            # hog | cnn (dlib's MMOD detector, slow on a CPU)
    "upsample": 1,                # times the photo is upsampled before detection
    "max_side": 2000,             # photos larger than this (pixels) are downscaled first
    "max_pixels": 200_000_000,    # larger non-JPEG photos are refused (memory)
    "jitter": 0,                  # dlib's num_jitters
    "min_face_size": 0,           # quality gates (pixels; detector score; sharpness)
    "min_score": None,
    "min_sharpness": None,
}
DETECT_KEYS = ("detector", "upsample", "max_side", "max_pixels")
EMBED_KEYS = ("jitter",)
GATE_KEYS = ("min_face_size", "min_score", "min_sharpness", "labels_from")

THUMB_SIDE = 64  # the sharpness score's face size


class PhotoError(ValueError):
    """An ``images`` setting that cannot be run; the message names the path or key."""


# ------------------------------------------------------------------ settings and listing
def checked_spec(spec) -> dict:
    """``spec`` with its defaults, checked before any work: raises ``PhotoError`` naming
    the key or the path."""
    if not isinstance(spec, dict):
        raise PhotoError(f"`images` must be a mapping, got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(SPEC_DEFAULTS))
    if unknown:
        raise PhotoError(f"images: unknown keys {unknown} (known: {sorted(SPEC_DEFAULTS)})")
    spec = {**SPEC_DEFAULTS, **{k: v for k, v in spec.items() if v is not None}}
    if not spec["path"]:
        raise PhotoError("images: no `path`")
    path = Path(spec["path"])
    if not path.exists():
        raise PhotoError(f"{path}: not found (images.path)")
    if spec["detector"] not in ("hog", "cnn"):
        raise PhotoError(f"images.detector: {spec['detector']!r} is not hog or cnn")
    if spec["labels_from"] not in (None, "parent_folder"):
        raise PhotoError(f"images.labels_from: {spec['labels_from']!r} is not parent_folder "
                         f"or null")
    for key in ("shards", "max_side", "max_pixels"):
        if not isinstance(spec[key], int) or isinstance(spec[key], bool) or spec[key] < 1:
            raise PhotoError(f"images.{key}: a positive integer, got {spec[key]!r}")
    for key in ("upsample", "jitter"):
        if not isinstance(spec[key], int) or isinstance(spec[key], bool) or spec[key] < 0:
            raise PhotoError(f"images.{key}: an integer ≥ 0, got {spec[key]!r}")
    spec["extensions"] = sorted({str(e).lower().lstrip(".") for e in spec["extensions"]})
    return spec


@dataclasses.dataclass(frozen=True)
class Photo:
    """One listed photo: ``name`` (its path relative to the images folder, or as the list
    file gives it: the first half of a face id), ``path`` (where to read it), size in bytes
    and modification time (ns)."""

    name: str
    path: str
    size: int
    mtime_ns: int


def list_photos(spec: dict) -> list[Photo]:
    """The photos of an ``images`` spec, sorted by name; only names and ``stat``: no photo
    is read.  A folder is walked (``recursive``) for the ``extensions``; a text file lists
    one path per line (relative to the file's folder, or absolute; ``#`` comments).  A
    listed path that does not exist is still listed (size -1): detection records it."""
    spec = checked_spec(spec)
    root = Path(spec["path"])
    names: list[tuple[str, Path]] = []
    if root.is_dir():
        walk = root.rglob("*") if spec["recursive"] else root.glob("*")
        for p in walk:
            if p.suffix.lower().lstrip(".") in spec["extensions"] and not p.is_dir():
                names.append((p.relative_to(root).as_posix(), p))
    else:
        for number, line in enumerate(root.read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            p = Path(line) if Path(line).is_absolute() else root.parent / line
            names.append((line, p))
    out = []
    for name, p in sorted(names):
        try:
            st = p.stat()
            out.append(Photo(name, str(p), int(st.st_size), int(st.st_mtime_ns)))
        except OSError:
            out.append(Photo(name, str(p), -1, 0))
    return out


def shard_of(name: str, shards: int) -> int:
    """The shard a photo goes to: by a hash of its name, so adding photos moves none."""
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % shards


def shard_photos(photos: list[Photo], shard: int, shards: int) -> list[Photo]:
    return [p for p in photos if shard_of(p.name, shards) == shard]


def listing_digest(photos: list[Photo]) -> str:
    """A digest of names, sizes and times: a shard's job reruns when it changes."""
    h = hashlib.sha1()
    for p in photos:
        h.update(f"{p.name}\0{p.size}\0{p.mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def settings_tag(spec: dict, keys: tuple[str, ...]) -> str:
    return hashlib.sha1(json.dumps({"version": VERSION, **{k: spec[k] for k in keys}},
                                   sort_keys=True).encode()).hexdigest()[:8]


def label_name(name: str) -> str | None:
    """``labels_from: parent_folder``: the name of the folder a photo sits in."""
    parent = Path(name).parent.name
    return parent or None


# ------------------------------------------------------------------ models
def model_path(name: str) -> str:
    """A model file of ``face_recognition_models`` (found without importing it)."""
    found = importlib.util.find_spec("face_recognition_models")
    if found is None or not found.submodule_search_locations:
        raise PhotoError("the face models are not installed: pip install -e '.[photos]' "
                         "(or face_recognition_models==0.3.0; README, Your photos)")
    path = Path(list(found.submodule_search_locations)[0]) / "models" / name
    if not path.exists():
        raise PhotoError(f"{path}: model file missing from face_recognition_models")
    return str(path)


class Models:
    """dlib's detector, 5-point landmark model and face ResNet, loaded once."""

    def __init__(self, detector: str = "hog", embed: bool = True):
        import dlib

        self.dlib = dlib
        self.kind = detector
        if detector == "cnn":
            self.detector = dlib.cnn_face_detection_model_v1(
                model_path("mmod_human_face_detector.dat"))
        else:
            self.detector = dlib.get_frontal_face_detector()
        self.landmarks = dlib.shape_predictor(model_path("shape_predictor_5_face_landmarks.dat"))
        self.resnet = (dlib.face_recognition_model_v1(
            model_path("dlib_face_recognition_resnet_model_v1.dat")) if embed else None)

    def detect(self, image: np.ndarray, upsample: int) -> list[tuple[tuple[int, int, int, int],
                                                                     float]]:
        """Faces of an RGB uint8 image: ((left, top, right, bottom), score) each."""
        if self.kind == "cnn":
            found = self.detector(image, upsample)
            return [((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()),
                     float(d.confidence)) for d in found]
        rects, scores, _ = self.detector.run(image, upsample, 0.0)
        return [((r.left(), r.top(), r.right(), r.bottom()), float(s))
                for r, s in zip(rects, scores)]

    def shape(self, image: np.ndarray, box) -> np.ndarray:
        """dlib's 5 landmarks of one face: (5, 2) int pixel coordinates."""
        shape = self.landmarks(image, self.dlib.rectangle(*[int(v) for v in box]))
        return np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)],
                        dtype=np.int64)

    def embed(self, image: np.ndarray, box, landmarks: np.ndarray, jitter: int) -> np.ndarray:
        """The 128-D descriptor of one face aligned by its landmarks (float32)."""
        dlib = self.dlib
        shape = dlib.full_object_detection(
            dlib.rectangle(*[int(v) for v in box]),
            [dlib.point(int(x), int(y)) for x, y in landmarks])
        return np.asarray(self.resnet.compute_face_descriptor(image, shape, jitter),
                          dtype=np.float32)


# ------------------------------------------------------------------ reading a photo
class Unusable(Exception):
    """A photo that cannot be used: ``status`` (empty, unreadable, too_large) and why."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


def read_image(path: str, max_side: int, max_pixels: int) -> tuple[np.ndarray, float, tuple]:
    """A photo as an RGB uint8 array, upright (EXIF orientation applied), no larger than
    ``max_side`` on its longer side: ``(image, scale, (width, height))`` with ``scale`` the
    factor from the photo's (upright) pixels to the array's.  Raises ``Unusable``."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if os.path.getsize(path) == 0:
        raise Unusable("empty", f"{path}: empty file (0 bytes)")
    Image.MAX_IMAGE_PIXELS = None  # checked below, against max_pixels, before decoding
    try:
        with Image.open(path) as img:
            width, height = img.size
            if img.format == "JPEG" and max(width, height) > max_side:
                # Decode at 1/2, 1/4 or 1/8 size straight away: memory stays bounded.
                img.draft("RGB", (max(1, width * max_side // max(width, height)),
                                  max(1, height * max_side // max(width, height))))
            elif width * height > max_pixels:
                raise Unusable("too_large", f"{path}: {width}×{height} pixels, more than "
                                            f"max_pixels {max_pixels} (not a JPEG, which "
                                            f"could be decoded downscaled)")
            img.load()
            orientation = img.getexif().get(0x0112, 1)
            upright = ImageOps.exif_transpose(img)
            if upright.mode in ("RGBA", "LA", "PA") or (upright.mode == "P" and
                                                       "transparency" in upright.info):
                upright = upright.convert("RGBA")
                canvas = Image.new("RGBA", upright.size, (255, 255, 255, 255))
                upright = Image.alpha_composite(canvas, upright)
            elif upright.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                # 16-bit or float greyscale: to 8 bits by its range (convert would clip).
                grey = np.asarray(upright, dtype=np.float64)
                top = 65535.0 if upright.mode != "F" else max(float(grey.max()), 1e-12)
                upright = Image.fromarray(np.clip(np.round(grey * 255.0 / top), 0, 255)
                                          .astype(np.uint8))
            rgb = upright.convert("RGB")
    except Unusable:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise Unusable("unreadable", f"{path}: not a readable image ({err})") from None
    # The upright photo's size: EXIF orientations 5-8 turn it a quarter.
    oriented = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    if max(rgb.size) > max_side:
        factor = max_side / max(rgb.size)
        rgb = rgb.resize((max(1, round(rgb.size[0] * factor)),
                          max(1, round(rgb.size[1] * factor))), Image.BILINEAR)
    scale = rgb.size[0] / oriented[0]
    return np.asarray(rgb, dtype=np.uint8), scale, oriented


def sharpness(image: np.ndarray, box) -> float:
    """Variance of the Laplacian of a face, grey, resized to 64×64 (higher: sharper)."""
    from PIL import Image

    left, top, right, bottom = (int(v) for v in box)
    h, w = image.shape[:2]
    left, top = max(0, left), max(0, top)
    right, bottom = min(w, right), min(h, bottom)
    if right - left < 2 or bottom - top < 2:
        return 0.0
    crop = Image.fromarray(image[top:bottom, left:right]).convert("L").resize(
        (THUMB_SIDE, THUMB_SIDE), Image.BILINEAR)
    g = np.asarray(crop, dtype=np.float64)
    lap = (g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1])
    return float(lap.var())


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------ the per-photo cache
class Cache:
    """Per-photo results keyed by content and settings: ``{root}/{kind}-{tag}/{sha[:2]}/
    {sha}.{json|npy}``; written atomically, so a killed job leaves no half entry."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, kind: str, tag: str, sha: str, suffix: str) -> Path:
        return self.root / f"{kind}-{tag}" / sha[:2] / f"{sha}.{suffix}"

    def get_detection(self, tag: str, sha: str) -> dict | None:
        p = self._path("detect", tag, sha, "json")
        return json.loads(p.read_text()) if p.exists() else None

    def put_detection(self, tag: str, sha: str, record: dict) -> None:
        io.write_json(self._path("detect", tag, sha, "json"), record)

    def get_embedding(self, tag: str, sha: str) -> np.ndarray | None:
        p = self._path("embed", tag, sha, "npy")
        return np.load(p) if p.exists() else None

    def put_embedding(self, tag: str, sha: str, vectors: np.ndarray) -> None:
        with io.atomic_path(self._path("embed", tag, sha, "npy")) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(vectors, dtype=np.float32))


# ------------------------------------------------------------------ detection
def detect_photo(models: Models, path: str, spec: dict) -> dict:
    """Every face of one photo: a record with ``status`` (ok, no_face, empty, unreadable,
    too_large), ``message``, the upright size, ``scale`` (photo pixels to the array
    detection ran on) and per face ``box`` (array pixels), ``score``, ``landmarks`` (5×2,
    array pixels), ``size`` (the box's shorter side in photo pixels) and ``sharpness``."""
    try:
        image, scale, size = read_image(path, spec["max_side"], spec["max_pixels"])
    except Unusable as err:
        return {"status": err.status, "message": str(err), "width": 0, "height": 0,
                "scale": 1.0, "faces": []}
    faces = []
    for box, score in models.detect(image, spec["upsample"]):
        faces.append({"box": list(box), "score": score,
                      "landmarks": models.shape(image, box).tolist(),
                      "size": float(min(box[2] - box[0], box[3] - box[1]) / scale),
                      "sharpness": sharpness(image, box)})
    status = "ok" if faces else "no_face"
    message = "" if faces else f"{path}: no face found"
    return {"status": status, "message": message, "width": size[0], "height": size[1],
            "scale": scale, "faces": faces}


def _unreadable(path: str, err: OSError) -> dict:
    return {"status": "unreadable", "message": f"{path}: cannot be read ({err.strerror or err})",
            "width": 0, "height": 0, "scale": 1.0, "faces": []}


def detect_shard(spec: dict, shard: int, shards: int, cache_root: str, out: str,
                 digest: str | None = None) -> dict:
    """Detection over one shard of the photo list, into ``out`` (HDF5): per photo its
    name, sha256 and record (JSON), and the counts.  ``digest`` (the planned listing's)
    must match the listing now: the photos must not change between planning and the job.
    Photos whose content is in the cache are not read again."""
    spec = checked_spec(spec)
    photos = shard_photos(list_photos(spec), shard, shards)
    if digest is not None and listing_digest(photos) != digest:
        raise PhotoError(f"{spec['path']}: the photos of shard {shard} changed after the "
                         f"workflow was planned; run it again")
    cache, tag = Cache(cache_root), settings_tag(spec, DETECT_KEYS)
    models = None
    shas, records, counts = [], [], {"photos": len(photos), "detected": 0, "cached": 0}
    progress = Progress(len(photos), f"face detection, shard {shard} of {shards}")
    for photo in photos:
        try:
            sha = sha256_file(photo.path)
        except OSError as err:
            shas.append("")
            records.append(_unreadable(photo.path, err))
            progress.update()
            continue
        record = cache.get_detection(tag, sha)
        if record is None:
            models = models or Models(spec["detector"], embed=False)
            record = {**detect_photo(models, photo.path, spec), "path": photo.path}
            cache.put_detection(tag, sha, record)
            counts["detected"] += 1
        else:  # the same bytes, perhaps under another name: name this one
            if record.get("path"):
                record["message"] = record["message"].replace(record["path"], photo.path)
            record["path"] = photo.path
            counts["cached"] += 1
        shas.append(sha)
        records.append(record)
        if record["status"] not in ("ok", "no_face"):
            log.warning("%s", record["message"])
        progress.update()
    io.write_arrays(out, {
        "names": np.array([p.name for p in photos], dtype=str),
        "paths": np.array([p.path for p in photos], dtype=str),
        "sha256": np.array(shas, dtype=str),
        "records": np.array([json.dumps(r) for r in records], dtype=str),
    }, {"shard": shard, "shards": shards, "counts": counts, "settings": tag,
        "spec": {k: spec[k] for k in DETECT_KEYS}})
    log.info("shard %d of %d: %d photos, %d detected now, %d from the cache", shard, shards,
             counts["photos"], counts["detected"], counts["cached"])
    return counts


def read_detections(path: str) -> tuple[list[str], list[str], list[str], list[dict]]:
    arrays = io.read_arrays(path)
    return (list(arrays["names"]), list(arrays["paths"]), list(arrays["sha256"]),
            [json.loads(r) for r in arrays["records"]])


# ------------------------------------------------------------------ embedding
def embed_shard(spec: dict, detections: str, cache_root: str, out: str) -> dict:
    """dlib's 128-D descriptor of every detected face of one shard, into ``out`` (HDF5:
    ``X`` (faces, 128) float32 in the order of the shard's photos and their faces,
    ``photo`` the index of each face's photo in the shard)."""
    spec = checked_spec(spec)
    names, paths, shas, records = read_detections(detections)
    cache = Cache(cache_root)
    tag = settings_tag(spec, DETECT_KEYS) + "-" + settings_tag(spec, EMBED_KEYS)
    models = None
    vectors, photo_of = [], []
    counts = {"faces": 0, "embedded": 0, "cached": 0}
    todo = [i for i, r in enumerate(records) if r["faces"]]
    progress = Progress(len(todo), "face embedding")
    for i in todo:
        record = records[i]
        found = cache.get_embedding(tag, shas[i])
        if found is None or found.shape[0] != len(record["faces"]):
            models = models or Models(spec["detector"], embed=True)
            image, _, _ = read_image(paths[i], spec["max_side"], spec["max_pixels"])
            found = np.stack([models.embed(image, f["box"], np.array(f["landmarks"]),
                                           spec["jitter"]) for f in record["faces"]])
            cache.put_embedding(tag, shas[i], found)
            counts["embedded"] += 1
        else:
            counts["cached"] += 1
        vectors.append(found)
        photo_of += [i] * found.shape[0]
        counts["faces"] += found.shape[0]
        progress.update()
    x = np.concatenate(vectors) if vectors else np.zeros((0, 128), np.float32)
    io.write_arrays(out, {"X": x.astype(np.float32), "photo": np.array(photo_of, np.int64)},
                    {"counts": counts, "settings": tag})
    log.info("%d faces of %d photos: %d photos embedded now, %d from the cache",
             counts["faces"], len(todo), counts["embedded"], counts["cached"])
    return counts


# ------------------------------------------------------------------ the faces artifact
FACE_COLUMNS = ("face_id", "photo", "face", "status", "reason", "left", "top", "right",
                "bottom", "score", "size", "sharpness", "label")


def gate(face: dict, spec: dict) -> str:
    """Why a face fails the quality gates ('' when it passes)."""
    reasons = []
    if spec["min_face_size"] and face["size"] < spec["min_face_size"]:
        reasons.append(f"size {face['size']:.0f} < min_face_size {spec['min_face_size']}")
    if spec["min_score"] is not None and face["score"] < spec["min_score"]:
        reasons.append(f"score {face['score']:.3f} < min_score {spec['min_score']}")
    if spec["min_sharpness"] is not None and face["sharpness"] < spec["min_sharpness"]:
        reasons.append(f"sharpness {face['sharpness']:.1f} < min_sharpness "
                       f"{spec['min_sharpness']}")
    return "; ".join(reasons)


def merge_faces(spec: dict, shards: list[tuple[str, str]], out: str, table: str,
                photos_table: str) -> dict:
    """The faces of every shard ``(detections, embeddings)`` into ``out`` (HDF5: ``X``,
    ``ids`` ``photo#face``, ``y`` with ``labels_from``, and per face its photo path and
    box in the photo's pixels, for the gallery), every face with its status in ``table``
    (TSV; rejected faces with the reason) and every photo in ``photos_table`` (TSV).
    Duplicate photos (same content) keep only their first name.  Returns the counts."""
    spec = checked_spec(spec)
    entries = []  # (name, path, sha, record, vectors)
    for detections, embeddings in shards:
        names, paths, shas, records = read_detections(detections)
        arrays = io.read_arrays(embeddings)
        # Faces are stored photo by photo: photo i's are rows bounds[i]:bounds[i + 1].
        bounds = np.searchsorted(arrays["photo"], np.arange(len(names) + 1))
        for i, (name, path, sha, record) in enumerate(zip(names, paths, shas, records)):
            vec = arrays["X"][bounds[i]:bounds[i + 1]]
            entries.append((name, path, sha, record, vec))
    entries.sort(key=lambda e: e[0])
    first_of: dict[str, str] = {}
    rows, photo_rows = [], []
    xs, ids, label_names, face_paths, boxes = [], [], [], [], []
    counts = {"photos": len(entries), "ok": 0, "no_face": 0, "empty": 0, "unreadable": 0,
              "too_large": 0, "duplicate": 0, "faces": 0, "rejected": 0, "kept": 0}
    for name, path, sha, record, vec in entries:
        status, message = record["status"], record["message"]
        if sha and sha in first_of and status in ("ok", "no_face"):
            status, message = "duplicate", f"{path}: the same photo as {first_of[sha]}"
        elif sha:
            first_of.setdefault(sha, name)
        counts[status] += 1
        photo_rows.append((name, path, sha, status, len(record["faces"]), message))
        if status != "ok":
            if status not in ("no_face", "duplicate"):
                log.warning("%s", message)
            continue
        label = label_name(name) if spec["labels_from"] == "parent_folder" else None
        for j, face in enumerate(record["faces"]):
            counts["faces"] += 1
            face_id = f"{name}#{j}"
            box = [round(v / record["scale"]) for v in face["box"]]
            reason = gate(face, spec)
            rows.append((face_id, name, j, "rejected" if reason else "kept", reason, *box,
                         f"{face['score']:.4f}", f"{face['size']:.1f}",
                         f"{face['sharpness']:.1f}", label or ""))
            if reason:
                counts["rejected"] += 1
                continue
            counts["kept"] += 1
            xs.append(vec[j])
            ids.append(face_id)
            label_names.append(label)
            face_paths.append(path)
            boxes.append(box)
    if not xs:
        raise PhotoError(f"{spec['path']}: no face to cluster among {counts['photos']} photos "
                         f"({_count_line(counts)})")
    arrays = {"X": np.stack(xs).astype(np.float32), "ids": np.array(ids, dtype=str),
              "photo_path": np.array(face_paths, dtype=str),
              "box": np.array(boxes, dtype=np.int64)}
    attrs = {"counts": counts, "summary": _count_line(counts)}
    if spec["labels_from"] == "parent_folder":
        known = sorted({n for n in label_names if n})
        code = {n: i for i, n in enumerate(known)}
        arrays["y"] = np.array([code[n] if n else -1 for n in label_names], dtype=np.int64)
        attrs["label_names"] = known
    io.write_arrays(out, arrays, attrs)
    io.write_tsv(table, FACE_COLUMNS, rows)
    io.write_tsv(photos_table, ("photo", "path", "sha256", "status", "faces", "message"),
               photo_rows)
    log.info("%s", _count_line(counts))
    return counts


def _count_line(counts: dict) -> str:
    bad = ", ".join(f"{counts[k]} {k.replace('_', ' ')}" for k in
                    ("no_face", "duplicate", "empty", "unreadable", "too_large") if counts[k])
    return (f"photos: {counts['photos']} listed, {counts['ok']} with faces"
            + (f", {bad}" if bad else "") + f"; faces: {counts['faces']} found, "
            f"{counts['rejected']} rejected by the quality gates, {counts['kept']} to cluster")


# ------------------------------------------------------------------ without the workflow
def embed_photos(spec: dict, cache_root: str | Path, work: str | Path) -> str:
    """Detection, embedding and the faces artifact in this process (one shard each), for
    ``facecluster cluster --images`` and Python: returns the path of ``faces.h5`` in
    ``work``.  Uses (and fills) the same per-photo cache as the workflow."""
    spec = {**checked_spec(spec), "shards": 1}
    work = Path(work)
    detections, embeddings = str(work / "detect.h5"), str(work / "embed.h5")
    detect_shard(spec, 0, 1, str(cache_root), detections)
    embed_shard(spec, detections, str(cache_root), embeddings)
    faces = str(work / "faces.h5")
    merge_faces(spec, [(detections, embeddings)], faces, str(work / "faces.tsv"),
                str(work / "photos.tsv"))
    return faces
