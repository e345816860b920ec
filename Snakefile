# facecluster: face clustering as a Snakemake workflow.
# This file only loads and checks the configuration, includes the rule files
# and names the final targets; the stages live in rules/, the work in src/.

from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

configfile: Path(workflow.basedir) / "config" / "config.yaml"

validate(config, "config/schema.yaml")

from facecluster import plan as fc_plan

# A sweep's variants are experiments too: each is checked against the schema.
try:
    validate({**config, "experiments": fc_plan.expand_sweeps(config["experiments"])[0]},
             "config/schema.yaml", set_default=False)
except fc_plan.ConfigError as err:
    raise WorkflowError(f"configuration: {err}")

try:
    fc_plan.check_inputs(config)
    PLAN = fc_plan.make_plan(config)
except fc_plan.ConfigError as err:
    raise WorkflowError(f"configuration: {err}")


include: "rules/common.smk"
include: "rules/ingest.smk"
include: "rules/knn.smk"
include: "rules/baseline.smk"
include: "rules/adanets.smk"
include: "rules/metrics.smk"


rule all:
    default_target: True
    input:
        PLAN.summary_tsv,
        PLAN.summary_md,


# The trained Ada-NETS models of every experiment as bundles, for `facecluster cluster`
# on new faces (kept out of `all`: a bundle records θ, and a new θ should rerun only
# the linkage).
rule bundles:
    input:
        PLAN.bundles,


onsuccess:
    summary = Path(PLAN.summary_md)
    if summary.exists():
        print("\nClustering metrics (" + str(summary) + "):\n")
        print(summary.read_text())
