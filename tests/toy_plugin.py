"""A plugin as a user writes one: named in ``CONDENSE_PLUGINS``, imported before any interface lists a registry."""

from tests import toy_family

toy_family.register()
