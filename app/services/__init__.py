"""Business logic the routes and the workers call; no HTTP types below this line except ProblemError."""
