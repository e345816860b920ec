# Stage 2: the ANN kNN graph (faiss), exact for small inputs, approximate with
# measured recall@k for large ones.  With `knn.shards` > 1 the search is split:
# knn_index saves the index once, each knn_shard job searches a slice of the
# queries, and the knn rule gathers the slices into the same artifact.

KNN_DIR = f"{RESULTS}/{{dataset}}/{{part}}/{{knn}}"


def knn_shards(wildcards):
    return int(knn_spec(wildcards).get("shards", 1))


def knn_shard_files(wildcards):
    n = knn_shards(wildcards)
    if n == 1:
        return []
    folder = KNN_DIR.format(dataset=wildcards.dataset, part=wildcards.part, knn=wildcards.knn)
    return [f"{folder}/shards/{i}-of-{n}.h5" for i in range(n)]


KNN_RULE = dict(
    input=dict(features=f"{RESULTS}/{{dataset}}/{{part}}/features.zarr", shards=knn_shard_files),
    output=dict(knn=f"{KNN_DIR}/knn.h5"),
    params=dict(
        spec=lambda wc: as_json(knn_spec(wc)),
        # One search here, or the gathering of the shard jobs' slices.
        command=lambda wc, input: ("knn-gather " + " ".join(f"--shard {p}" for p in input.shards)
                                   if input.shards else "knn"),
    ),
    log=f"{KNN_DIR}/knn.log",
    shell=(FACECLUSTER + " {params.command} --features {input.features} --params {params.spec:q}"
           " --out {output.knn} --threads {threads} --log {log}"),
)

if BETWEEN_WORKFLOW_CACHE:
    rule knn:
        input: **KNN_RULE["input"]
        output: **KNN_RULE["output"]
        params: **KNN_RULE["params"]
        log: KNN_RULE["log"]
        threads: workflow.cores
        resources: **cluster_resources("knn")
        cache: "omit-software"
        shell: KNN_RULE["shell"]
else:
    rule knn:
        input: **KNN_RULE["input"]
        output: **KNN_RULE["output"]
        params: **KNN_RULE["params"]
        log: KNN_RULE["log"]
        benchmark: f"{KNN_DIR}/knn.benchmark.tsv"
        threads: workflow.cores
        resources: **cluster_resources("knn")
        shell: KNN_RULE["shell"]


rule knn_index:
    input:
        features=f"{RESULTS}/{{dataset}}/{{part}}/features.zarr",
    output:
        directory(f"{KNN_DIR}/shards/index"),
    params:
        spec=lambda wc: as_json(knn_spec(wc)),
    log:
        f"{KNN_DIR}/shards/index.log",
    benchmark:
        f"{KNN_DIR}/shards/index.benchmark.tsv"
    threads: workflow.cores
    resources:
        **cluster_resources("knn"),
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
    benchmark:
        f"{KNN_DIR}/shards/{{shard}}-of-{{shards}}.benchmark.tsv"
    threads: workflow.cores
    resources:
        **cluster_resources("knn"),
    wildcard_constraints:
        shard=r"\d+",
        shards=r"\d+",
    shell:
        FACECLUSTER + " knn-shard --features {input.features} --index {input.index}"
        " --shard {wildcards.shard} --of {wildcards.shards} --params {params.spec:q}"
        " --out {output} --threads {threads} --log {log}"


# A second Ada-NETS round (Table 10): the kNN graph of a GCN embedding.
rule knn_embedding:
    input:
        features="{prefix}/embedding.zarr",
    output:
        knn="{prefix}/r2/{knn}/knn.h5",
    params:
        spec=lambda wc: as_json(PLAN.job(f"{wc.prefix}/r2/{wc.knn}/knn.h5").params),
    log:
        "{prefix}/r2/{knn}/knn.log",
    benchmark:
        "{prefix}/r2/{knn}/knn.benchmark.tsv"
    threads: workflow.cores
    resources:
        **cluster_resources("knn"),
    shell:
        FACECLUSTER + " knn --features {input.features} --params {params.spec:q}"
        " --out {output.knn} --threads {threads} --log {log}"
