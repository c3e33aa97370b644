"""Celery workers: a thin adapter that claims a job, runs the engine on it and stores the results."""
