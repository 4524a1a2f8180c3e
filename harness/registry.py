"""Registries by name: tasks and verifiers add themselves with a decorator.

Plugins in this repository are discovered by importing every module of their
package; external packages add theirs through the entry-point groups
``gapbench.tasks`` and ``gapbench.verifiers``.

A built-in module that fails to import is a bug in gapbench and raises. A
third-party plugin that fails to load (its module raises, or it registers a
name that is already taken) is skipped with a :class:`PluginLoadWarning` that
names it, and recorded in :attr:`Registry.failed`; the other plugins still load.
A registry counts as loaded only once loading has finished, so every lookup
sees the same complete set.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from gapbench.harness.errors import GapbenchError

T = TypeVar("T")


class PluginLoadWarning(UserWarning):
    """A third-party plugin could not be loaded and was skipped."""


class _PluginLoad:
    """The entry point being loaded, and what it registered so far (in any registry)."""

    def __init__(self, ep: EntryPoint):
        self.ep = ep
        self.registered: list[tuple[Registry, str]] = []


_current: list[_PluginLoad] = []  # a stack: a plugin's module may import another plugin


def _describe(ep: EntryPoint) -> str:
    """How a user recognises an entry point: its name, what it points at and its package."""
    dist = getattr(ep, "dist", None)
    source = f", from package {dist.name} {dist.version}" if dist is not None else ""
    return f"{ep.name!r} (entry point {ep.group} = {ep.value}{source})"


def _remedy(ep: EntryPoint | None, action: str = "fix") -> str:
    dist = getattr(ep, "dist", None) if ep is not None else None
    if dist is not None:
        return f"{action} the package {dist.name} or uninstall it (pip uninstall {dist.name})"
    return f"{action} the package that provides it or uninstall it"


class Registry(Generic[T]):
    def __init__(self, kind: str, package: str, entry_point_group: str):
        self.kind = kind
        self.package = package
        self.entry_point_group = entry_point_group
        self._items: dict[str, type[T]] = {}
        self._loaded = False
        self.failed: dict[str, str] = {}  # plugin -> what it is and why it was skipped (one line)
        self._families: dict[str, tuple[Callable[[str], type[T]], str]] = {}  # prefix -> (resolve, description)

    def _builtin(self, cls: type) -> bool:
        return cls.__module__ == self.package or cls.__module__.startswith(self.package + ".")

    def register(self, cls: type[T]) -> type[T]:
        name = getattr(cls, "name", None)
        if not name:
            raise TypeError(f"{cls.__qualname__} needs a class attribute `name` to be registered as a {self.kind}")
        old = self._items.get(name)
        if old is not None and old is not cls:
            if self._builtin(old) and self._builtin(cls):
                raise TypeError(f"two {self.kind}s are registered as {name!r}: {old.__module__} and {cls.__module__}")
            # a third-party class: the built-in (or the first registered) keeps the name
            keep, skip = (cls, old) if self._builtin(cls) else (old, cls)
            self._items[name] = keep
            self._clash(name, keep, skip)
            return cls
        self._items[name] = cls
        if _current:
            _current[-1].registered.append((self, name))
        return cls

    def register_family(self, prefix: str, resolve: Callable[[str], type[T]], description: str) -> None:
        """Names of the form ``PREFIX:NAME`` that ``resolve(NAME)`` turns into a class on demand (e.g.
        ``lm-eval:gsm8k``: any task of lm-eval's). ``resolve`` must return the same class for the same NAME."""
        if prefix in self._families and self._families[prefix][0] is not resolve:
            raise TypeError(f"two {self.kind} families use the prefix {prefix!r}")
        self._families[prefix] = (resolve, description)

    def families(self) -> list[tuple[str, str]]:
        """(``PREFIX:NAME``, description) of each family of names."""
        self._load()
        return [(f"{prefix}:NAME", description) for prefix, (_, description) in sorted(self._families.items())]

    def _clash(self, name: str, keep: type, skip: type) -> None:
        ep = _current[-1].ep if _current and not self._builtin(skip) else None
        self._fail(
            ep.name if ep else f"{skip.__module__}:{skip.__qualname__}",
            _describe(ep) if ep else f"{skip.__module__}.{skip.__qualname__}",
            "was skipped",
            f"it registers the name {name!r}, which {keep.__module__}.{keep.__qualname__} already has",
            _remedy(ep, "give it another name in"),
        )

    def _fail(self, key: str, label: str, what: str, reason: str, remedy: str) -> None:
        """Record a skipped plugin and warn about it, once."""
        if key in self.failed:
            return
        self.failed[key] = f"{label}: {reason}"
        warnings.warn(
            f"{self.kind} plugin {label} {what}: {reason}. The other {self.kind}s still load; {remedy}.",
            PluginLoadWarning,
            stacklevel=2,
        )

    def _load(self) -> None:
        if self._loaded:
            return
        pkg = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_") and info.name != "base":
                importlib.import_module(f"{self.package}.{info.name}")  # a failure here is gapbench's bug: raise
        for ep in entry_points(group=self.entry_point_group):
            self._load_plugin(ep)
        self._loaded = True

    def _load_plugin(self, ep: EntryPoint) -> None:
        load = _PluginLoad(ep)
        _current.append(load)
        try:
            ep.load()
        except Exception as exc:
            for registry, name in load.registered:  # nothing of a half-imported plugin stays
                registry._items.pop(name, None)
            self._fail(ep.name, _describe(ep), "failed to load", f"{type(exc).__name__}: {exc}", _remedy(ep))
        finally:
            _current.pop()

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def get(self, name: str) -> type[T]:
        self._load()
        prefix, sep, rest = name.partition(":")
        if sep and name not in self._items and prefix in self._families:
            if not rest.strip():
                raise GapbenchError(f"{self.kind} {name!r} names no {prefix} {self.kind}: give {prefix}:NAME (e.g. {prefix}:gsm8k).")
            return self._families[prefix][0](rest.strip())
        if name not in self._items:
            hint = f" The {self.kind} plugin of that name was skipped: {self.failed[name]}." if name in self.failed else ""
            raise GapbenchError(
                f"unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {', '.join(self.names())}."
                + "".join(f" Also {family}." for family, _ in self.families())
                + f" Run `gapbench {self.kind}s` to list them with a description."
            )
        return self._items[name]

    def items(self) -> list[tuple[str, type[T]]]:
        self._load()
        return sorted(self._items.items())
