"""Task plugins, registered by name. Add a task by adding one module here
(or, from another package, through the ``gapbench.tasks`` entry point)."""

from gapbench.harness.registry import Registry
from gapbench.tasks.base import Doc, Grade, Task, VerificationExample

TASKS: Registry[Task] = Registry("task", "gapbench.tasks", "gapbench.tasks")
register = TASKS.register

__all__ = ["TASKS", "register", "Task", "Doc", "Grade", "VerificationExample"]
