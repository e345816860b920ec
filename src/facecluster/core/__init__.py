"""The shared core: ingest, the kNN graph, artifact I/O, components, threshold selection,
metrics, planning, resources and the method contract.  It imports no method: it asks the
registry (``facecluster.registry``) for one by name."""
