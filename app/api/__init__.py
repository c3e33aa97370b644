"""HTTP layer: routers, dependencies and the versioned API."""
