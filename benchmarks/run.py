"""Run the scale benchmark and write its report, in one command:

    python benchmarks/run.py [--sizes ms1m-50k ms1m-150k ms1m-584k] [snakemake options...]

The workflow builds every dataset of benchmarks/ms1m.yaml (or the ``--sizes`` given)
with the experiments it names; Snakemake reruns only what is missing or out of date,
so a second run reports at once.  Then benchmarks/report.py reads the per-rule
benchmark files and writes benchmarks/results/report.md.  Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=None,
                        help="datasets of benchmarks/ms1m.yaml to run (default: all)")
    parser.add_argument("--cores", default="all")
    args, snakemake_args = parser.parse_known_args(argv)
    command = [sys.executable, "-m", "snakemake", "all", "--cores", str(args.cores),
               *snakemake_args, "--configfile", str(HERE / "ms1m.yaml")]
    if args.sizes:
        run = yaml.safe_load((HERE / "ms1m.yaml").read_text())["run"]
        command += ["--config", "run=" + json.dumps({**run, "datasets": args.sizes})]
    print("+", " ".join(command), flush=True)
    done = subprocess.run(command, cwd=ROOT)
    if done.returncode != 0:
        print(f"error: the workflow failed (exit {done.returncode}); no report written",
              file=sys.stderr)
        return done.returncode
    sys.path.insert(0, str(HERE))
    import report

    return report.main([str(ROOT / "benchmarks" / "results")])


if __name__ == "__main__":
    sys.exit(main())
