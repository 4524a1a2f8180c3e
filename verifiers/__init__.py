"""Verification methods, registered by name. Add one by adding one module here
(or, from another package, through the ``gapbench.verifiers`` entry point)."""

from gapbench.harness.registry import Registry
from gapbench.verifiers.base import Matches, Reply, Request, Verdict, Verifier

VERIFIERS: Registry[Verifier] = Registry("verifier", "gapbench.verifiers", "gapbench.verifiers")
register = VERIFIERS.register

__all__ = ["VERIFIERS", "register", "Verifier", "Request", "Verdict", "Matches", "Reply"]
