# Scores: every experiment's clusters against the test labels, and one summary table
# across every dataset and experiment.


rule metrics:
    input:
        clusters="{leaf}/clusters.h5",
        features=lambda wc: PLAN.features(*Path(wc.leaf).relative_to(RESULTS).parts[:2]),
    output:
        metrics="{leaf}/metrics.json",
    log:
        "{leaf}/metrics.log",
    threads: 1
    resources:
        **cluster_resources(fc_resources.core_stage("metrics")),
    shell:
        FACECLUSTER + " metrics --clusters {input.clusters} --features {input.features}"
        " --out {output.metrics} --log {log}"


rule summary:
    input:
        [r.metrics for r in PLAN.outcomes],
        [r.quality for r in PLAN.outcomes if r.quality],
    output:
        tsv=report(PLAN.summary_tsv, caption="../workflow/report/summary.rst", category="Summary"),
        md=PLAN.summary_md,
    params:
        entries=as_json([
            {"dataset": r.dataset, "experiment": r.experiment, "method": r.method,
             "summary": r.summary, "metrics": r.metrics, "quality": r.quality,
             "sweep": r.sweep, "swept": r.swept,
             "manifests": [f"{RESULTS}/{r.dataset}/{part}/manifest.json"
                           for part in ("train", "test")]}
            for r in PLAN.outcomes
        ]),
    log:
        f"{RESULTS}/summary.log",
    threads: 1
    resources:
        **cluster_resources(fc_resources.core_stage("summary")),
    shell:
        FACECLUSTER + " summary --entries {params.entries:q} --tsv {output.tsv} --md {output.md}"
        " --log {log} > /dev/null"
