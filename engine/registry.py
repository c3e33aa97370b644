"""One registry type for every extension point (scores, models, distillation methods, dataset formats, selection
policies): each entry has a name and a one-line description, and an interface (the API's enum and ``/v1/methods``,
the CLI's choices, the docs' tables) lists what is registered instead of restating it.

Registries hold plain descriptions; an entry that needs torch to run names its implementation as a
``"module:attribute"`` string (``load``), imported when the entry is used. That keeps listing, validating and
documenting an extension point free of heavy imports: the API process never imports torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Generic, Protocol, TypeVar


class Entry(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...


E = TypeVar("E", bound=Entry)


@dataclass
class Registry(Generic[E]):
    """Entries of one kind, in registration order.

    Attributes:
        kind: what an entry is, for error messages ("pruning method", "dataset format").
        sort: list names sorted (a stable choice list) instead of in registration order (an order of preference).
    """

    kind: str
    sort: bool = False
    _entries: dict[str, E] = field(default_factory=dict, repr=False)

    def register(self, entry: E) -> E:
        if entry.name in self._entries:
            raise ValueError(f"{self.kind} {entry.name!r} is registered twice")
        self._entries[entry.name] = entry
        return entry

    def get(self, name: str) -> E:
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries) if self.sort else list(self._entries)

    def __iter__(self) -> Iterator[E]:
        return (self._entries[name] for name in self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def unregister(self, name: str) -> None:
        """Removes an entry; for tests that register a toy one."""
        del self._entries[name]


def load(target: str) -> Any:
    """The object a ``"package.module:attribute"`` string names, importing its module."""
    module, _, attribute = target.partition(":")
    if not attribute:
        raise ValueError(f"{target!r} is not of the form 'module:attribute'")
    return getattr(import_module(module), attribute)
