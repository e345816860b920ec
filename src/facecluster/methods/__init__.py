"""The clustering methods: one module or package each, defining ``METHOD``
(``facecluster.core.contract.Method``); ``facecluster.registry`` finds them by name."""
