"""Pydantic models at the HTTP edge, named for their role (``JobCreate``, ``JobPublic``...)."""
