import re

# Stage 2: the kNN graph (faiss), shared by every method: exact for small inputs,
# approximate with measured recall@k for large ones.  With `knn.shards` > 1 the search is
# split: knn_index saves the index once, each knn_shard job searches a slice of the
# queries, and the knn rule gathers the slices into the same artifact.  The knn rule may
# be shared between workflows through Snakemake's cache (README: Running on SLURM).

# {base} holds a part's features: the ingested ones ({results}/{dataset}/{part}), or
# refined ones ({results}/{dataset}/{part}/{knn}/refine-{refiner}-{hash}).
KNN_DIR = "{base}/{knn}"
KNN_SIZING = fc_resources.core_stage("knn")
BASE = (re.escape(RESULTS) + r"/[A-Za-z0-9][A-Za-z0-9_.-]*/(train|test|(fit|val)-[0-9a-f]{8})"
        r"(/knn-k\d+-[0-9a-f]{8}/refine-[a-z0-9_]+-[0-9a-f]{8})?")


def knn_spec(wildcards):
    try:
        return PLAN.knn[wildcards.knn]
    except KeyError:
        raise WorkflowError(f"no experiment in the configuration uses the kNN graph {wildcards.knn!r}")


def knn_shard_files(wildcards):
    n = int(knn_spec(wildcards)["shards"])
    if n == 1:
        return []
    folder = KNN_DIR.format(base=wildcards.base, knn=wildcards.knn)
    return [f"{folder}/shards/{i}-of-{n}.h5" for i in range(n)]


rule knn:
    input:
        features="{base}/features.zarr",
        shards=knn_shard_files,
    output:
        knn=f"{KNN_DIR}/knn.h5",
    params:
        spec=lambda wc: as_json(knn_spec(wc)),
        # One search here, or the gathering of the shard jobs' slices.
        command=lambda wc, input: ("knn-gather " + " ".join(f"--shard {p}" for p in input.shards)
                                   if input.shards else "knn"),
    log:
        f"{KNN_DIR}/knn.log",
    threads: workflow.cores
    resources:
        **cluster_resources(KNN_SIZING),
    cache: "omit-software"
    wildcard_constraints:
        base=BASE,
    shell:
        FACECLUSTER + " {params.command} --features {input.features} --params {params.spec:q}"
        " --out {output.knn} --threads {threads} --log {log}"


rule knn_index:
    input:
        features="{base}/features.zarr",
    output:
        directory(f"{KNN_DIR}/shards/index"),
    params:
        spec=lambda wc: as_json(knn_spec(wc)),
    log:
        f"{KNN_DIR}/shards/index.log",
    threads: workflow.cores
    wildcard_constraints:
        base=BASE,
    resources:
        **cluster_resources(KNN_SIZING),
    shell:
        FACECLUSTER + " knn-index --features {input.features} --params {params.spec:q}"
        " --out {output} --threads {threads} --log {log}"


rule knn_shard:
    input:
        features="{base}/features.zarr",
        index=rules.knn_index.output[0],
    output:
        f"{KNN_DIR}/shards/{{shard}}-of-{{shards}}.h5",
    params:
        spec=lambda wc: as_json(knn_spec(wc)),
    log:
        f"{KNN_DIR}/shards/{{shard}}-of-{{shards}}.log",
    threads: workflow.cores
    resources:
        **cluster_resources(KNN_SIZING),
    wildcard_constraints:
        base=BASE,
        shard=r"\d+",
        shards=r"\d+",
    shell:
        FACECLUSTER + " knn-shard --features {input.features} --index {input.index}"
        " --shard {wildcards.shard} --of {wildcards.shards} --params {params.spec:q}"
        " --out {output} --threads {threads} --log {log}"


# A feature refiner (refine: {method: ...}) over a part's features and their kNN graph;
# with labels it also writes face-verification ROC points before and after.
rule refine:
    input:
        features="{base}/features.zarr",
        knn="{base}/{knn}/knn.h5",
    output:
        features=directory("{base}/{knn}/{refine}/features.zarr"),
        verification="{base}/{knn}/{refine}/verification.json",
    params:
        spec=lambda wc, output: as_json(PLAN.refined[output.features]),
    log:
        "{base}/{knn}/{refine}/refine.log",
    threads: workflow.cores
    resources:
        **cluster_resources(fc_resources.core_stage("refine")),
    wildcard_constraints:
        base=BASE,
        refine=r"refine-[a-z0-9_]+-[0-9a-f]{8}",
    shell:
        FACECLUSTER + " refine --features {input.features} --knn {input.knn}"
        " --params {params.spec:q} --out {output.features}"
        " --verification {output.verification} --threads {threads} --log {log}"

