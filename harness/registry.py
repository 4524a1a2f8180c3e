"""Registries by name: tasks and verifiers add themselves with a decorator.

Plugins in this repository are discovered by importing every module of their
package; external packages add theirs through the entry-point groups
``gapbench.tasks`` and ``gapbench.verifiers``.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from harness.errors import GapbenchError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, package: str, entry_point_group: str):
        self.kind = kind
        self.package = package
        self.entry_point_group = entry_point_group
        self._items: dict[str, type[T]] = {}
        self._loaded = False

    def register(self, cls: type[T]) -> type[T]:
        name = getattr(cls, "name", None)
        if not name:
            raise TypeError(f"{cls.__qualname__} needs a class attribute `name` to be registered as a {self.kind}")
        if name in self._items and self._items[name] is not cls:
            raise TypeError(f"two {self.kind}s are registered as {name!r}: {self._items[name].__module__} and {cls.__module__}")
        self._items[name] = cls
        return cls

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        pkg = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_") and info.name != "base":
                importlib.import_module(f"{self.package}.{info.name}")
        for ep in entry_points(group=self.entry_point_group):
            ep.load()

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def get(self, name: str) -> type[T]:
        self._load()
        if name not in self._items:
            raise GapbenchError(
                f"unknown {self.kind} {name!r}. Known {self.kind}s: {', '.join(self.names())}. "
                f"Run `gapbench {self.kind}s` to list them with a description."
            )
        return self._items[name]

    def items(self) -> list[tuple[str, type[T]]]:
        self._load()
        return sorted(self._items.items())
