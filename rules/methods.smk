# Every stage of every method the plan uses is one rule, made here from the method's own
# declaration (src/facecluster/core/contract.py: Stage), so a method brings no Snakemake
# of its own.  A rule is called `{method}_{stage}`; it writes `{prefix}/{artifact}` for
# exactly the prefixes the plan gave its jobs (no path patterns to keep in step), and
# finds each job's inputs and parameters in the plan by that output path.

import re

from facecluster import registry as fc_registry

MODULE_FLAGS = "".join(f" --method-module {m}" for m in PLAN.method_modules)


def method_rule(method, stage):
    prefixes = sorted({path[: -len(stage.artifact) - 1]
                       for path in PLAN.outputs(method.name, stage.name)})
    artifact = "{prefix}/" + stage.artifact

    def job(wc):
        return PLAN.job(f"{wc.prefix}/{stage.artifact}")

    table = {"table": "{prefix}/clusters.tsv"} if stage.table else {}
    rule:
        name: method.rule_name(stage)
        input: unpack(lambda wc: job(wc).inputs)
        output: directory(artifact) if stage.directory else artifact, **table
        params:
            spec=lambda wc: as_json(job(wc).params),
            inputs=lambda wc: " ".join(f"--in {k}={v}" for k, v in job(wc).inputs.items()),
        log: "{prefix}/" + stage.stem + ".log"
        threads: core_threads(stage.threads)
        resources: **cluster_resources(stage)
        cache: "omit-software" if stage.cacheable else False
        wildcard_constraints:
            prefix="|".join(re.escape(p) for p in prefixes),
        shell:
            FACECLUSTER + f" stage {method.name} {stage.name}{MODULE_FLAGS}"
            " {params.inputs} --params {params.spec:q} --out {output[0]} --threads {threads}"
            " --log {log}" + (" --table {output.table}" if stage.table else "")


for method_name, stage_name in PLAN.stages():
    method = fc_registry.get(method_name)
    method_rule(method, method.stage(stage_name))
