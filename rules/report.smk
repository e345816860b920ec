# The report: figures drawn from the attributes every method writes, for Snakemake's HTML
# report.  These rules run only for the `report` target, or within `all` with `report: true`:
#   snakemake report && snakemake report --report report.html

REPORT_DIR = f"{RESULTS}/report"


def outcome_of(wc):
    for r in PLAN.outcomes:
        if (r.dataset, r.experiment) == (wc.dataset, wc.experiment):
            return r
    raise WorkflowError(f"no experiment {wc.experiment} on dataset {wc.dataset}")


def final_job(wc):
    job = PLAN.job(outcome_of(wc).clusters)
    return {"inputs": job.inputs, "params": job.params}


rule report_result:
    input:
        clusters=lambda wc: outcome_of(wc).clusters,
        metrics=lambda wc: outcome_of(wc).metrics,
        features=lambda wc: PLAN.features(wc.dataset, "test"),
    output:
        report(directory(f"{REPORT_DIR}/{{dataset}}/{{experiment}}"), patterns=["{name}.png"],
               caption="../workflow/report/result.rst", category="{dataset}",
               subcategory="{experiment}"),
    params:
        method=lambda wc: outcome_of(wc).method,
        job=lambda wc: as_json(final_job(wc)),
        lineage=lambda wc: as_json(PLAN.lineage(outcome_of(wc).clusters)),
    log:
        f"{REPORT_DIR}/{{dataset}}/{{experiment}}.log",
    threads: 1
    resources:
        **cluster_resources(fc_resources.core_stage("report")),
    wildcard_constraints:
        experiment=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    shell:
        FACECLUSTER + " figures-result --clusters {input.clusters} --features {input.features}"
        " --method {params.method}{MODULE_FLAGS} --job {params.job:q} --lineage {params.lineage:q}"
        " --out {output} --log {log}"


rule report_dataset:
    input:
        lambda wc: [r.metrics for r in PLAN.outcomes if r.dataset == wc.dataset],
    output:
        report(directory(f"{REPORT_DIR}/{{dataset}}/_dataset"), patterns=["{name}.png"],
               caption="../workflow/report/dataset.rst", category="{dataset}",
               subcategory="the dataset"),
    params:
        entries=lambda wc: as_json([{"experiment": r.experiment, "metrics": r.metrics}
                                    for r in PLAN.outcomes if r.dataset == wc.dataset]),
        folder=lambda wc: f"{RESULTS}/{wc.dataset}",
    log:
        f"{REPORT_DIR}/{{dataset}}/_dataset.log",
    threads: 1
    resources:
        **cluster_resources(fc_resources.core_stage("report")),
    shell:
        FACECLUSTER + " figures-dataset --entries {params.entries:q} --folder {params.folder}"
        " --out {output} --log {log}"


rule report_scoreboard:
    input:
        [r.metrics for r in PLAN.outcomes],
    output:
        report(f"{REPORT_DIR}/scoreboard.png", caption="../workflow/report/scoreboard.rst",
               category="Scoreboard"),
    params:
        entries=as_json([{"dataset": r.dataset, "experiment": r.experiment,
                          "metrics": r.metrics} for r in PLAN.outcomes]),
    log:
        f"{REPORT_DIR}/scoreboard.log",
    threads: 1
    resources:
        **cluster_resources(fc_resources.core_stage("report")),
    shell:
        FACECLUSTER + " figures-scoreboard --entries {params.entries:q} --out {output} --log {log}"


REPORT_FIGURES = (
    [f"{REPORT_DIR}/{r.dataset}/{r.experiment}" for r in PLAN.outcomes]
    + [f"{REPORT_DIR}/{d}/_dataset" for d in dict.fromkeys(r.dataset for r in PLAN.outcomes)]
    + [f"{REPORT_DIR}/scoreboard.png"]
)


# Every figure (then: snakemake report --report report.html).
rule report:
    input:
        PLAN.summary_tsv,
        REPORT_FIGURES,
