"""Infrastructure shared by the API and the workers: settings, database, problems, ids."""
