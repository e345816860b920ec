import shlex

# Stage 1: ingest.  One dataset part (train or test) into the canonical
# features artifact: generated (the embedded synthetic set) or read from the
# user's files, validated, normalised.


rule ingest:
    input:
        lambda wc: PLAN.ingest_inputs(wc.dataset),
    output:
        features=directory(f"{RESULTS}/{{dataset}}/{{part}}/features.zarr"),
        manifest=f"{RESULTS}/{{dataset}}/{{part}}/manifest.json",
    params:
        dataset=lambda wc: as_json(PLAN.ingest_spec(wc.dataset, wc.part)),
        # A parameter, not only a wildcard: the between-workflow cache hashes parameters,
        # and without it the train and test parts of a dataset would hash alike.
        part=lambda wc: wc.part,
        # A validation part (val-…) and the rest of the train part (fit-…): the holdout.
        holdout=lambda wc: (f"--holdout {shlex.quote(as_json(PLAN.holdouts[wc.part[4:]]))}"
                            if wc.part[:4] in ("fit-", "val-") else ""),
    log:
        f"{RESULTS}/{{dataset}}/{{part}}/ingest.log",
    threads: 1
    resources:
        **cluster_resources(fc_resources.core_stage("ingest")),
    shell:
        FACECLUSTER + " ingest --dataset {params.dataset:q} --part {params.part} {params.holdout}"
        " --out {output.features} --manifest {output.manifest} --log {log}"
