"""The ftcurate desktop app (PySide6): a thin shell over ftcurate.core.

Nothing in ftcurate.core imports this package. Widgets never scan or store data
themselves: they call core functions, in a background :class:`~ftcurate.gui.workers.Worker`
when the work can take a while.
"""
