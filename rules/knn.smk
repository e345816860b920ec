# Stage 2: the kNN graph (faiss), shared by every method: exact for small inputs,
# approximate with measured recall@k for large ones.  With `knn.shards` > 1 the search is
# split: knn_index saves the index once, each knn_shard job searches a slice of the
# queries, and the knn rule gathers the slices into the same artifact.  The knn rule may
# be shared between workflows through Snakemake's cache (README: Running on SLURM).

KNN_DIR = f"{RESULTS}/{{dataset}}/{{part}}/{{knn}}"
KNN_SIZING = fc_resources.core_stage("knn")


def knn_spec(wildcards):
    try:
        return PLAN.knn[wildcards.knn]
    except KeyError:
        raise WorkflowError(f"no experiment in the configuration uses the kNN graph {wildcards.knn!r}")


def knn_shard_files(wildcards):
    n = int(knn_spec(wildcards)["shards"])
    if n == 1:
        return []
    folder = KNN_DIR.format(dataset=wildcards.dataset, part=wildcards.part, knn=wildcards.knn)
    return [f"{folder}/shards/{i}-of-{n}.h5" for i in range(n)]


rule knn:
    input:
        features=f"{RESULTS}/{{dataset}}/{{part}}/features.zarr",
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
    shell:
        FACECLUSTER + " {params.command} --features {input.features} --params {params.spec:q}"
        " --out {output.knn} --threads {threads} --log {log}"


rule knn_index:
    input:
        features=f"{RESULTS}/{{dataset}}/{{part}}/features.zarr",
    output:
        directory(f"{KNN_DIR}/shards/index"),
    params:
        spec=lambda wc: as_json(knn_spec(wc)),
    log:
        f"{KNN_DIR}/shards/index.log",
    threads: workflow.cores
    resources:
        **cluster_resources(KNN_SIZING),
    shell:
        FACECLUSTER + " knn-index --features {input.features} --params {params.spec:q}"
        " --out {output} --threads {threads} --log {log}"


rule knn_shard:
    input:
        features=f"{RESULTS}/{{dataset}}/{{part}}/features.zarr",
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
        shard=r"\d+",
        shards=r"\d+",
    shell:
        FACECLUSTER + " knn-shard --features {input.features} --index {input.index}"
        " --shard {wildcards.shard} --of {wildcards.shards} --params {params.spec:q}"
        " --out {output} --threads {threads} --log {log}"
