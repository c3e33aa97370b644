"""The ``condense`` command line."""
