"""End-to-end engine jobs (prune, later distill) that the CLI and the workers both run."""
