# Baseline: the thresholded kNN graph cut into connected components.


rule knn_threshold:
    input:
        knn=f"{RESULTS}/{{dataset}}/{{part}}/{{knn}}/knn.h5",
        features=f"{RESULTS}/{{dataset}}/{{part}}/features.zarr",
    output:
        clusters=f"{RESULTS}/{{dataset}}/{{part}}/{{knn}}/threshold-{{threshold}}/clusters.h5",
        table=f"{RESULTS}/{{dataset}}/{{part}}/{{knn}}/threshold-{{threshold}}/clusters.tsv",
    log:
        f"{RESULTS}/{{dataset}}/{{part}}/{{knn}}/threshold-{{threshold}}/clusters.log",
    benchmark:
        f"{RESULTS}/{{dataset}}/{{part}}/{{knn}}/threshold-{{threshold}}/clusters.benchmark.tsv"
    threads: 1
    resources:
        **cluster_resources("knn_threshold"),
    shell:
        FACECLUSTER + " threshold --knn {input.knn} --features {input.features}"
        " --threshold {wildcards.threshold} --out {output.clusters} --table {output.table} --log {log}"
