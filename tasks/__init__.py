"""Task plugins, registered by name. Add a task by adding one module here
(or, from another package, through the ``gapbench.tasks`` entry point)."""

from harness.registry import Registry
from tasks.base import Doc, Grade, Task, VerificationExample

TASKS: Registry[Task] = Registry("task", "tasks", "gapbench.tasks")
register = TASKS.register

__all__ = ["TASKS", "register", "Task", "Doc", "Grade", "VerificationExample"]
