"""Where the app keeps its things: QSettings, the projects folder, bundled resources.

``FTCURATE_HOME`` (environment variable) moves everything the app writes - the
settings file and the projects made from opened datasets - into that folder. Tests
and screenshot runs use it so they never touch the user's real data folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QSettings, QStandardPaths

APP_NAME = "ftcurate"
ORG_NAME = "ftcurate"
HOME_ENV = "FTCURATE_HOME"

REPO_ROOT = Path(__file__).resolve().parents[2]
RESOURCES = REPO_ROOT / "resources"
SAMPLE_DIR = RESOURCES / "sample"
ICON_PATH = RESOURCES / "icons" / "ftcurate.svg"

MAX_RECENT = 10


def home_override() -> Optional[Path]:
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """The app's data folder: ``$FTCURATE_HOME`` or the platform's AppDataLocation."""
    home = home_override()
    if home is not None:
        return home
    loc = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    if not loc:  # no application name set, or a very bare platform
        loc = os.path.join(os.path.expanduser("~"), ".local", "share", APP_NAME)
    return Path(loc)


def projects_dir() -> Path:
    return data_dir() / "projects"


def make_settings() -> QSettings:
    """The app's QSettings: an INI file under ``$FTCURATE_HOME`` when set, else the
    platform default for organisation/application "ftcurate"."""
    home = home_override()
    if home is not None:
        return QSettings(str(home / "settings.ini"), QSettings.Format.IniFormat)
    return QSettings(ORG_NAME, APP_NAME)


def recent_projects(settings: Optional[QSettings] = None) -> list[str]:
    s = settings or make_settings()
    value = s.value("recent/projects", [])
    if isinstance(value, str):  # QSettings hands back a lone string for one-item lists
        value = [value] if value else []
    return [str(v) for v in (value or []) if v]


def add_recent_project(path: str, settings: Optional[QSettings] = None) -> list[str]:
    s = settings or make_settings()
    path = os.path.abspath(path)
    items = [path] + [p for p in recent_projects(s) if os.path.abspath(p) != path]
    items = items[:MAX_RECENT]
    s.setValue("recent/projects", items)
    return items


def remove_recent_project(path: str, settings: Optional[QSettings] = None) -> list[str]:
    s = settings or make_settings()
    items = [p for p in recent_projects(s) if os.path.abspath(p) != os.path.abspath(path)]
    s.setValue("recent/projects", items)
    return items


def last_folder(settings: Optional[QSettings] = None) -> str:
    s = settings or make_settings()
    folder = str(s.value("paths/last_folder", "") or "")
    return folder if folder and os.path.isdir(folder) else os.path.expanduser("~")


def set_last_folder(path: str, settings: Optional[QSettings] = None) -> None:
    s = settings or make_settings()
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    s.setValue("paths/last_folder", folder)


def reviewer_name(settings: Optional[QSettings] = None) -> str:
    """The name decisions are logged under ("" until the user gives one)."""
    s = settings or make_settings()
    return str(s.value("review/reviewer", "") or "").strip()


def set_reviewer_name(name: str, settings: Optional[QSettings] = None) -> None:
    s = settings or make_settings()
    s.setValue("review/reviewer", (name or "").strip())


def helpdesk_sample() -> Optional[Path]:
    """The bundled help-desk sample (a task the demo model learns visibly), if this checkout has it."""
    path = SAMPLE_DIR / "helpdesk" / "helpdesk_train.jsonl"
    return path if path.is_file() else None


def sample_dataset() -> Optional[Path]:
    """The bundled sample training file, if this checkout has one."""
    preferred = SAMPLE_DIR / "chat_train.jsonl"
    if preferred.is_file():
        return preferred
    if SAMPLE_DIR.is_dir():
        for p in sorted(SAMPLE_DIR.glob("*.jsonl")):
            if "test" not in p.name.lower():
                return p
    return None
