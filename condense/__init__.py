"""Condense's Python client: ``from condense import Client`` (see :mod:`condense.client`)."""

from condense.client import Client, CondenseError, Dataset, Job, JobFailed

__all__ = ["Client", "CondenseError", "Dataset", "Job", "JobFailed"]
