"""Condense HTTP service: datasets, jobs and their artifacts over a versioned REST API."""

from engine.plugins import load_plugins

# Before any schema, route or task lists a registry: what a plugin registers is offered like a built-in.
load_plugins()
