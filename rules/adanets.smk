# Ada-NETS (ICLR 2022): structure space, k_off labels, adaptive filter,
# graph building, GCN, embedding and linkage.  These rules share one pattern:
# the output path names the parameters, and the plan (src/facecluster/plan.py)
# tells each output's inputs and parameters.


def stage_inputs(filename):
    return lambda wc: PLAN.job(f"{wc.prefix}/{filename}").inputs


def stage_params(filename):
    return lambda wc: as_json(PLAN.job(f"{wc.prefix}/{filename}").params)


def stage_in_flags(filename):
    """The inputs as --in NAME=PATH flags for the facecluster command."""
    return lambda wc: " ".join(f"--in {name}={path}"
                               for name, path in PLAN.job(f"{wc.prefix}/{filename}").inputs.items())


STAGE_SHELL = (FACECLUSTER + " {params.command} {params.inputs} --params {params.spec:q}"
               " --out {output[0]} --threads {threads} --log {log}")


STRUCTURE_RULE = dict(
    params=dict(command="structure", inputs=stage_in_flags("structure.h5"),
                spec=stage_params("structure.h5")),
)

if BETWEEN_WORKFLOW_CACHE:  # see rules/common.smk
    rule structure:
        input: unpack(stage_inputs("structure.h5"))
        output: "{prefix}/structure.h5"
        params: **STRUCTURE_RULE["params"]
        log: "{prefix}/structure.log"
        threads: workflow.cores
        resources: **cluster_resources("structure")
        cache: "omit-software"
        wildcard_constraints:
            prefix=r".+/ss-[^/]+",
        shell: STAGE_SHELL
else:
    rule structure:
        input: unpack(stage_inputs("structure.h5"))
        output: "{prefix}/structure.h5"
        params: **STRUCTURE_RULE["params"]
        log: "{prefix}/structure.log"
        benchmark: "{prefix}/structure.benchmark.tsv"
        threads: workflow.cores
        resources: **cluster_resources("structure")
        wildcard_constraints:
            prefix=r".+/ss-[^/]+",
        shell: STAGE_SHELL


rule koff:
    input:
        unpack(stage_inputs("koff.h5")),
    output:
        "{prefix}/koff.h5",
    params:
        command="koff",
        inputs=stage_in_flags("koff.h5"),
        spec=stage_params("koff.h5"),
    log:
        "{prefix}/koff.log",
    benchmark:
        "{prefix}/koff.benchmark.tsv"
    threads: 1
    resources:
        **cluster_resources("koff"),
    wildcard_constraints:
        prefix=r".+/koff-b[^/]+",
    shell:
        STAGE_SHELL


rule filter_train:
    input:
        unpack(stage_inputs("filter.pt")),
    output:
        "{prefix}/filter.pt",
    params:
        command="filter-train",
        inputs=stage_in_flags("filter.pt"),
        spec=stage_params("filter.pt"),
    log:
        "{prefix}/filter.log",
    benchmark:
        "{prefix}/filter.benchmark.tsv"
    threads: workflow.cores
    resources:
        **cluster_resources("filter_train"),
    wildcard_constraints:
        prefix=r".+/filter-[0-9a-f]{8}",
    shell:
        STAGE_SHELL


rule filter_infer:
    input:
        unpack(stage_inputs("k_hat.h5")),
    output:
        "{prefix}/k_hat.h5",
    params:
        command="filter-infer",
        inputs=stage_in_flags("k_hat.h5"),
        spec=stage_params("k_hat.h5"),
    log:
        "{prefix}/k_hat.log",
    benchmark:
        "{prefix}/k_hat.benchmark.tsv"
    threads: workflow.cores
    resources:
        **cluster_resources("filter_infer"),
    wildcard_constraints:
        prefix=r".+/and-b[^/]+",
    shell:
        STAGE_SHELL


rule graph:
    input:
        unpack(stage_inputs("graph.h5")),
    output:
        "{prefix}/graph.h5",
    params:
        command="graph",
        inputs=stage_in_flags("graph.h5"),
        spec=stage_params("graph.h5"),
    log:
        "{prefix}/graph.log",
    benchmark:
        "{prefix}/graph.benchmark.tsv"
    threads: 1
    resources:
        **cluster_resources("graph"),
    wildcard_constraints:
        prefix=r".+/(and-b[^/]+|graph-[^/]+|koff-b[^/]+)",
    shell:
        STAGE_SHELL


rule gcn_train:
    input:
        unpack(stage_inputs("gcn.pt")),
    output:
        "{prefix}/gcn.pt",
    params:
        command="gcn-train",
        inputs=stage_in_flags("gcn.pt"),
        spec=stage_params("gcn.pt"),
    log:
        "{prefix}/gcn.log",
    benchmark:
        "{prefix}/gcn.benchmark.tsv"
    threads: workflow.cores
    resources:
        **cluster_resources("gcn_train"),
    wildcard_constraints:
        prefix=r".+/gcn-[0-9a-f]{8}",
    shell:
        STAGE_SHELL


rule embed:
    input:
        unpack(stage_inputs("embedding.zarr")),
    output:
        directory("{prefix}/embedding.zarr"),
    params:
        command="embed",
        inputs=stage_in_flags("embedding.zarr"),
        spec=stage_params("embedding.zarr"),
    log:
        "{prefix}/embedding.log",
    benchmark:
        "{prefix}/embedding.benchmark.tsv"
    threads: workflow.cores
    resources:
        **cluster_resources("embed"),
    wildcard_constraints:
        prefix=r".+/gcn-[0-9a-f]{8}",
    shell:
        STAGE_SHELL


rule link:
    input:
        unpack(stage_inputs("clusters.h5")),
    output:
        "{prefix}/clusters.h5",
        table="{prefix}/clusters.tsv",
    params:
        command="link",
        inputs=stage_in_flags("clusters.h5"),
        spec=stage_params("clusters.h5"),
    log:
        "{prefix}/clusters.log",
    benchmark:
        "{prefix}/clusters.benchmark.tsv"
    threads: workflow.cores
    resources:
        **cluster_resources("link"),
    wildcard_constraints:
        prefix=r".+/link-[kc]\d+-[^/]+",
    shell:
        STAGE_SHELL + " --table {output.table}"


rule graph_cut:
    input:
        unpack(stage_inputs("clusters.h5")),
    output:
        "{prefix}/clusters.h5",
        table="{prefix}/clusters.tsv",
    params:
        command="graph-cut",
        inputs=stage_in_flags("clusters.h5"),
        spec=stage_params("clusters.h5"),
    log:
        "{prefix}/clusters.log",
    benchmark:
        "{prefix}/clusters.benchmark.tsv"
    threads: 1
    resources:
        **cluster_resources("graph_cut"),
    wildcard_constraints:
        prefix=r".+/cut-[^/]+",
    shell:
        STAGE_SHELL + " --table {output.table}"


rule bundle:
    input:
        unpack(lambda wc: PLAN.job(f"{RESULTS}/{wc.dataset}/bundles/{wc.experiment}").inputs),
    output:
        directory(f"{RESULTS}/{{dataset}}/bundles/{{experiment}}"),
    params:
        command="bundle-export",
        inputs=lambda wc: " ".join(f"--in {k}={v}" for k, v in
                                   PLAN.job(f"{RESULTS}/{wc.dataset}/bundles/{wc.experiment}").inputs.items()),
        spec=lambda wc: as_json(PLAN.job(f"{RESULTS}/{wc.dataset}/bundles/{wc.experiment}").params),
    log:
        f"{RESULTS}/{{dataset}}/bundles/{{experiment}}.log",
    benchmark:
        f"{RESULTS}/{{dataset}}/bundles/{{experiment}}.benchmark.tsv"
    threads: 1
    resources:
        **cluster_resources("bundle"),
    shell:
        STAGE_SHELL
