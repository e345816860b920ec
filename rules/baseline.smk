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


# τ: auto, calibrated on the labeled training split's kNN graph (best F_P + F_B over a grid).
rule threshold_calibrate:
    input:
        knn=f"{RESULTS}/{{dataset}}/train/{{knn}}/knn.h5",
        features=f"{RESULTS}/{{dataset}}/train/features.zarr",
    output:
        f"{RESULTS}/{{dataset}}/train/{{knn}}/threshold-auto/calibration.json",
    log:
        f"{RESULTS}/{{dataset}}/train/{{knn}}/threshold-auto/calibration.log",
    benchmark:
        f"{RESULTS}/{{dataset}}/train/{{knn}}/threshold-auto/calibration.benchmark.tsv"
    threads: 1
    resources:
        **cluster_resources("knn_threshold"),
    shell:
        FACECLUSTER + " threshold-calibrate --knn {input.knn} --features {input.features}"
        " --out {output} --log {log}"


# threshold-auto: the calibrated τ; threshold-auto-tol{t}: the largest τ within t of its score.
rule knn_threshold_auto:
    input:
        knn=f"{RESULTS}/{{dataset}}/test/{{knn}}/knn.h5",
        features=f"{RESULTS}/{{dataset}}/test/features.zarr",
        calibration=rules.threshold_calibrate.output[0],
    output:
        clusters=f"{RESULTS}/{{dataset}}/test/{{knn}}/threshold-auto{{tolerance}}/clusters.h5",
        table=f"{RESULTS}/{{dataset}}/test/{{knn}}/threshold-auto{{tolerance}}/clusters.tsv",
    log:
        f"{RESULTS}/{{dataset}}/test/{{knn}}/threshold-auto{{tolerance}}/clusters.log",
    benchmark:
        f"{RESULTS}/{{dataset}}/test/{{knn}}/threshold-auto{{tolerance}}/clusters.benchmark.tsv"
    wildcard_constraints:
        tolerance=r"(-tol[0-9.]+)?",
    params:
        tolerance=lambda wildcards: wildcards.tolerance[len("-tol"):] or "0",
    threads: 1
    resources:
        **cluster_resources("knn_threshold"),
    shell:
        FACECLUSTER + " threshold --knn {input.knn} --features {input.features} --threshold auto"
        " --tolerance {params.tolerance} --calibration {input.calibration} --out {output.clusters}"
        " --table {output.table} --log {log}"
