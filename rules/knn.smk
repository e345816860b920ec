# Stage 2: the ANN kNN graph (faiss), exact for small inputs, approximate with
# measured recall@k for large ones.


rule knn:
    input:
        features=f"{RESULTS}/{{dataset}}/{{part}}/features.zarr",
    output:
        knn=f"{RESULTS}/{{dataset}}/{{part}}/{{knn}}/knn.h5",
    params:
        spec=lambda wc: as_json(knn_spec(wc)),
    log:
        f"{RESULTS}/{{dataset}}/{{part}}/{{knn}}/knn.log",
    benchmark:
        f"{RESULTS}/{{dataset}}/{{part}}/{{knn}}/knn.benchmark.tsv"
    threads: workflow.cores
    resources:
        **cluster_resources("knn"),
    shell:
        FACECLUSTER + " knn --features {input.features} --params {params.spec:q}"
        " --out {output.knn} --threads {threads} --log {log}"
