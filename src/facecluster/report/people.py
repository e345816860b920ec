"""The people page: a clustering of faces from photos, as people can use it.

For one result on a photos dataset (``images:``) this writes, into one folder:

- ``index.html``: the people, largest first, each with their number of faces and photos
  and up to ``per_person`` face thumbnails; the faces nobody else shares (singletons)
  last, in one block; one self-contained page that links its thumbnails;
- ``thumbs/{cluster}-{n}.jpg``: square face crops (the detector's box with a margin),
  ``size`` pixels a side;
- ``faces.tsv`` and ``faces.json``: photo → faces → cluster (each face with its box in the
  photo's pixels), for scripts and photo managers.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict

import numpy as np

from ..core import io
from ..core.progress import Progress, log

MARGIN = 0.3  # of the box's side, added around a face in its thumbnail


def thumbnail(image: np.ndarray, box, scale: float, size: int):
    """A square crop around ``box`` (photo pixels; ``image`` is the photo scaled by
    ``scale``), padded with grey where it leaves the photo, ``size`` pixels a side (PIL)."""
    from PIL import Image

    left, top, right, bottom = (float(v) * scale for v in box)
    side = max(right - left, bottom - top) * (1 + 2 * MARGIN)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(1, int(round(side)))
    canvas = Image.new("RGB", (s, s), (128, 128, 128))
    photo = Image.fromarray(image)
    canvas.paste(photo.crop((max(0, x0), max(0, y0), min(photo.width, x0 + s),
                             min(photo.height, y0 + s))), (max(0, -x0), max(0, -y0)))
    return canvas.resize((size, size), Image.BILINEAR)


def people_page(clusters: str, features: str, faces: str, out: str, title: str = "",
                **options) -> dict:
    """The people page of one workflow result (``photos_people``): ``clusters`` its
    ``clusters.h5``; ``features`` the features artifact it clustered (its ``ids`` are face
    ids ``photo#face``); ``faces`` the photos dataset's ``faces.h5``.  See ``write_people``."""
    labels = io.read_array(clusters, "labels")
    ids = io.read_array(features, "ids") if io.has_array(features, "ids") else None
    if ids is None or ids.size != labels.size:
        raise ValueError(f"{features}: no face ids for the {labels.size} clustered faces")
    return write_people(labels, ids, faces, out, title, **options)


def write_people(labels: np.ndarray, ids: np.ndarray, faces: str, out: str, title: str = "",
                 per_person: int = 12, size: int = 96, max_side: int = 2000) -> dict:
    """The people page of one clustering into the folder ``out`` (atomically).

    ``labels`` int (N,) the clusters of the faces ``ids`` str (N,) (``photo#face``);
    ``faces``: the ``faces.h5`` the faces came from (each face's photo path and box).
    Raises ``ValueError`` when a face id is not in that faces artifact.  Returns counts for
    the log."""
    from ..core.photos import Unusable, read_image

    table = io.read_arrays(faces, ["ids", "photo_path", "box"])
    where = {face_id: i for i, face_id in enumerate(table["ids"])}
    missing = [face_id for face_id in ids if face_id not in where]
    if missing:
        raise ValueError(f"{faces}: {len(missing)} of the clustered faces are not in it "
                         f"(first: {missing[0]})")
    members: dict[int, list[int]] = defaultdict(list)
    for i, c in enumerate(labels):
        members[int(c)].append(i)
    order = sorted(members, key=lambda c: (-len(members[c]), c))
    people = [c for c in order if len(members[c]) > 1]
    singles = [c for c in order if len(members[c]) == 1]
    number = {c: k + 1 for k, c in enumerate(people)}  # person 1 is the largest

    shown: dict[str, list[tuple[int, int]]] = defaultdict(list)  # photo -> (face, thumb)
    for c in people:
        for i in members[c][:per_person]:
            shown[table["photo_path"][where[ids[i]]]].append((i, c))
    for c in singles:
        i = members[c][0]
        shown[table["photo_path"][where[ids[i]]]].append((i, c))

    thumbs: dict[int, str] = {}
    with io.atomic_path(out) as tmp:
        (tmp / "thumbs").mkdir(parents=True)
        progress = Progress(len(shown), "thumbnails")
        for path, faces_here in shown.items():  # each photo read once
            try:
                image, scale, _ = read_image(path, max_side, 10 ** 9)
            except (Unusable, OSError) as err:
                log.warning("%s: no thumbnail (%s)", path, err)
                progress.update()
                continue
            for i, c in faces_here:
                name = f"thumbs/{c}-{i}.jpg"
                thumbnail(image, table["box"][where[ids[i]]], scale, size).save(
                    tmp / name, quality=85)
                thumbs[i] = name
            progress.update()
        rows, records = [], defaultdict(list)
        for i, face_id in enumerate(ids):
            k = where[face_id]
            photo, _, face = face_id.rpartition("#")
            person = number.get(int(labels[i]))
            box = [int(v) for v in table["box"][k]]
            rows.append((photo, face, str(table["photo_path"][k]), int(labels[i]),
                         person if person else "", *box))
            records[photo].append({"face": int(face), "cluster": int(labels[i]),
                                   "person": person, "box": box})
        io.write_tsv(tmp / "faces.tsv", ("photo", "face", "path", "cluster", "person", "left",
                                          "top", "right", "bottom"),
                     sorted(rows, key=lambda r: (r[0], int(r[1]))))
        with open(tmp / "faces.json", "w") as f:
            json.dump({"photos": {p: sorted(v, key=lambda r: r["face"])
                                  for p, v in sorted(records.items())}}, f, indent=1)
        (tmp / "index.html").write_text(_page(title, people, singles, members, ids, thumbs,
                                              number, per_person, size))
    counts = {"faces": int(labels.size), "people": len(people), "singletons": len(singles),
              "photos": len({table["photo_path"][where[i]] for i in ids})}
    log.info("people page: %d people of 2 or more faces, %d faces alone, %d faces of %d "
             "photos -> %s", counts["people"], counts["singletons"], counts["faces"],
             counts["photos"], out)
    return counts


def _page(title, people, singles, members, ids, thumbs, number, per_person, size) -> str:
    def img(i):
        if i not in thumbs:
            return ""
        tip = html.escape(ids[i])
        return (f'<img src="{thumbs[i]}" width="{size}" height="{size}" title="{tip}" '
                f'alt="{tip}" loading="lazy">')

    blocks = []
    for c in people:
        faces = members[c]
        photos = len({ids[i].rpartition("#")[0] for i in faces})
        more = (f'<span class="more">+{len(faces) - per_person} more</span>'
                if len(faces) > per_person else "")
        blocks.append(f'<section><h2>Person {number[c]} <small>{len(faces)} faces in '
                      f'{photos} photos · cluster {c}</small></h2>'
                      f'<div class="faces">{"".join(img(i) for i in faces[:per_person])}'
                      f'{more}</div></section>')
    if singles:
        blocks.append(f'<section><h2>Seen once <small>{len(singles)} faces</small></h2>'
                      f'<div class="faces">'
                      f'{"".join(img(members[c][0]) for c in singles)}</div></section>')
    heading = html.escape(title or "People")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{heading}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; background: #fafafa; }}
h1 {{ font-size: 1.4em; }} h2 {{ font-size: 1.05em; margin: 0 0 .4em; }}
small {{ color: #666; font-weight: normal; }}
section {{ background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .7em;
           margin: 0 0 .8em; }}
.faces {{ display: flex; flex-wrap: wrap; gap: 4px; align-items: center; }}
.faces img {{ border-radius: 4px; }} .more {{ color: #666; margin-left: .5em; }}
</style></head><body>
<h1>{heading}</h1>
<p>{len(people)} people seen in two or more faces, largest first; {len(singles)} faces seen
once. Hover a face for its photo. The faces of every photo: faces.tsv, faces.json.</p>
{"".join(blocks)}
</body></html>
"""
