"""Feature refiners: stages that turn a part's features into better ones before any method
clusters them (``refine: {method: NAME, ...}`` on a dataset or an experiment).  Each module
here defines ``REFINER`` (``facecluster.core.contract.Refiner``)."""
