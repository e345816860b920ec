# Photos in (README: Your photos): for a dataset with `images:`, face detection and
# embedding over shards of the photo list, then the faces artifact the ingest reads, and
# after clustering a people page per result.  Each rule writes exactly the paths the plan
# gave its jobs (PLAN.photo_jobs, PLAN.people).  A detect job's `digest` parameter is its
# shard's listing (names, sizes, times): adding photos reruns only the shards they land
# in, and within a shard only new photo contents are detected and embedded (the cache).

import re

PHOTO_SIZING = fc_resources.core_stage("photos")


def photo_job(wc):
    return PLAN.photo_jobs[wc.path]


def exact(paths):
    return "|".join(re.escape(p) for p in paths) or "^$"


rule photos_detect:
    output:
        "{path}",
    params:
        spec=lambda wc: as_json(photo_job(wc).spec),
        shard=lambda wc: photo_job(wc).shard,
        shards=lambda wc: photo_job(wc).shards,
        digest=lambda wc: photo_job(wc).digest,
        cache=lambda wc: photo_job(wc).spec["cache"],
    log:
        "{path}.log",
    threads: 1
    resources:
        **cluster_resources(PHOTO_SIZING),
    wildcard_constraints:
        path=exact(PLAN.photo_outputs("detect")),
    shell:
        FACECLUSTER + " photos detect --images {params.spec:q} --shard {params.shard}"
        " --of {params.shards} --digest {params.digest} --cache {params.cache:q}"
        " --out {output} --log {log}"


rule photos_embed:
    input:
        lambda wc: photo_job(wc).inputs,
    output:
        "{path}",
    params:
        spec=lambda wc: as_json(photo_job(wc).spec),
        cache=lambda wc: photo_job(wc).spec["cache"],
    log:
        "{path}.log",
    threads: 1
    resources:
        **cluster_resources(PHOTO_SIZING),
    wildcard_constraints:
        path=exact(PLAN.photo_outputs("embed")),
    shell:
        FACECLUSTER + " photos embed --images {params.spec:q} --detections {input}"
        " --cache {params.cache:q} --out {output} --log {log}"


rule photos_faces:
    input:
        lambda wc: PLAN.photo_jobs[f"{wc.folder}/faces.h5"].inputs,
    output:
        faces="{folder}/faces.h5",
        table="{folder}/faces.tsv",
        photos="{folder}/photos.tsv",
    params:
        spec=lambda wc: as_json(PLAN.photo_jobs[f"{wc.folder}/faces.h5"].spec),
        shards=lambda wc, input: " ".join(f"--shard-pair {d} {e}"
                                          for d, e in zip(input[::2], input[1::2])),
    log:
        "{folder}/faces.log",
    threads: 1
    resources:
        **cluster_resources(fc_resources.core_stage("ingest")),
    wildcard_constraints:
        folder=exact([p[: -len("/faces.h5")] for p in PLAN.photo_outputs("faces")]),
    shell:
        FACECLUSTER + " photos faces --images {params.spec:q} {params.shards}"
        " --out {output.faces} --table {output.table} --photos {output.photos} --log {log}"


def people_of(wc):
    result = PLAN.people[f"{wc.leaf}/people"]
    return {"clusters": result.clusters, "features": PLAN.features(result.dataset, "test"),
            "faces": PLAN.ingest_inputs(result.dataset)[0]}


rule photos_people:
    input:
        unpack(people_of),
    output:
        directory("{leaf}/people"),
    params:
        title=lambda wc: (f"{PLAN.people[wc.leaf + '/people'].dataset}: "
                          f"{PLAN.people[wc.leaf + '/people'].experiment}"),
    log:
        "{leaf}/people.log",
    threads: 1
    resources:
        **cluster_resources(fc_resources.core_stage("report")),
    wildcard_constraints:
        leaf=exact([p[: -len("/people")] for p in PLAN.people]),
    shell:
        FACECLUSTER + " photos people --clusters {input.clusters} --features {input.features}"
        " --faces {input.faces} --title {params.title:q} --out {output} --log {log}"
