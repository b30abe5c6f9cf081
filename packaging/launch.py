"""Entry point of the packaged app (PyInstaller runs this file as ``__main__``).

``ftcurate/gui/app.py`` cannot be the entry script itself: it uses relative imports.
With arguments that name a command (``validate``, ``scan``, ``export``...) the bundled app
runs the command line instead, so one folder gives both.
"""

import sys

from ftcurate.cli import build_parser, main as cli_main
from ftcurate.gui.app import main as gui_main


def _commands() -> set:
    for action in build_parser()._actions:  # the sub-command names, from the parser itself
        if getattr(action, "choices", None) and isinstance(action.choices, dict):
            return set(action.choices)
    return set()


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and (args[0] in _commands() or args[0] in ("-h", "--help", "--version")):
        sys.exit(cli_main(args))
    sys.exit(gui_main(args))
