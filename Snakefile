# facecluster: face clustering as a Snakemake workflow.
# This file only loads and checks the configuration, plans the jobs and includes the
# rule files; the stages live in rules/ (the core's) and in each method's module (one rule
# per stage, made by rules/methods.smk), the work in src/.

from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

configfile: Path(workflow.basedir) / "config" / "config.yaml"

from facecluster.core import planning as fc_planning

try:
    fc_planning.check_schema(config, Path(workflow.basedir) / "config" / "schema.yaml")
except fc_planning.ConfigError as err:
    raise WorkflowError(f"configuration: {err}")
validate(config, "config/schema.yaml")

try:
    fc_planning.check_inputs(config)
    PLAN = fc_planning.make_plan(config)
except fc_planning.ConfigError as err:
    raise WorkflowError(f"configuration: {err}")


include: "rules/common.smk"
include: "rules/photos.smk"
include: "rules/ingest.smk"
include: "rules/knn.smk"
include: "rules/methods.smk"
include: "rules/metrics.smk"
include: "rules/report.smk"

report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        PLAN.summary_tsv,
        PLAN.summary_md,
        # a photos dataset's people page per result (README: Your photos)
        list(PLAN.people),
        # the report's figures, with `report: true` (else: snakemake report)
        REPORT_FIGURES if config.get("report") else [],


# Every experiment's trained model as a folder, for `facecluster cluster --model` on new
# faces (kept out of `all`: a model records θ, and a new θ should rerun only the linkage).
rule bundles:
    input:
        PLAN.models,


onsuccess:
    summary = Path(PLAN.summary_md)
    if summary.exists():
        print("\nClustering metrics (" + str(summary) + "):\n")
        print(summary.read_text())
