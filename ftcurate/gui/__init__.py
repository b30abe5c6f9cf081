"""The ftcurate desktop app (PySide6): a thin shell over ftcurate.core.

Nothing in ftcurate.core imports this package. Widgets never scan or store data
themselves: they call core functions, in a background :class:`~ftcurate.gui.workers.Worker`
when the work can take a while.
"""

from .compat import guard_singleton_refcounts

# PySide6 6.12.0 on Python 3.11 drops references to None/True on every void call and
# signal emit until the interpreter aborts; pyproject.toml excludes that version, and
# this guard covers an environment that has it anyway (a no-op elsewhere).
guard_singleton_refcounts()
