"""The ``condense`` command line."""

from engine.plugins import load_plugins

# Before any command lists a registry in its choices and options: a plugin's entries are offered like built-ins.
load_plugins()
