"""Condense HTTP service: datasets, jobs and their artifacts over a versioned REST API."""
