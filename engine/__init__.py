"""Condense engine: a pure PyTorch library for coreset pruning and dataset distillation.

Nothing in this package imports the web framework, the task queue or the database, so
it can be used on its own (``condense prune ...``) or from the service's workers.
"""
