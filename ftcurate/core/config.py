"""Settings dataclasses from JSON, strictly.

Every settings dataclass that ftcurate reads from a JSON file (training settings,
``run_config.json``, scan settings) goes through :func:`from_dict`, so a value is used only
when it means what it says:

* booleans are ``true``/``false`` or ``1``/``0`` (JSON, or those words as strings, any
  case); anything else is an error - ``bool("false")`` is True, so nothing is coerced;
* integers are whole numbers (``3.0`` is fine, ``3.5``, ``"3"`` and ``true`` are not);
  floats are finite numbers; strings are strings;
* a field whose metadata has ``choices`` takes one of them;
* nested dataclasses are read the same way (keys named ``outer.inner`` in messages);
* unknown keys are an error naming the key (with the closest known name), missing keys
  keep their defaults.

Errors are :class:`ConfigError` (a ValueError) with one sentence naming the file (when
known) and the key. Standard library only: the GUI and the CLI import it cheaply.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import types
import typing
from typing import Any, Optional, TypeVar, Union

T = TypeVar("T")

TRUE_WORDS = ("true", "1")
FALSE_WORDS = ("false", "0")


class ConfigError(ValueError):
    """A settings value or key that cannot be used; ``key`` is the setting's name
    (dotted for nested settings), ``None`` for the file as a whole."""

    def __init__(self, message: str, key: Optional[str] = None) -> None:
        super().__init__(message)
        self.key = key


def parse_bool(value: Any, key: str = "value", where: str = "") -> bool:
    """``value`` as a boolean: True/False, 1/0, or the strings "true"/"false"/"1"/"0" (any
    case, surrounding spaces ignored). Anything else raises ConfigError naming ``key``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ConfigError(f"{_where(where)}{key!r} must be true or false (or 1/0), not {_show(value)}", key)


def _where(where: str) -> str:
    return f"{where}: " if where else ""


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if _jsonable(value) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _optional_of(tp: Any) -> tuple[bool, Any]:
    """(True, X) for Optional[X] / X | None, else (False, tp)."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = typing.get_args(tp)
        if len(args) == 2 and type(None) in args:
            return True, next(a for a in args if a is not type(None))
    return False, tp


def convert(value: Any, tp: Any, key: str, where: str = "", choices: Optional[typing.Sequence] = None) -> Any:
    """``value`` checked (and, for whole floats, converted) against the annotation ``tp``."""
    optional, tp = _optional_of(tp)
    if value is None:
        if optional or tp is Any:
            return None
        raise ConfigError(f"{_where(where)}{key!r} must not be null", key)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value, where=where, prefix=key + ".")
    if tp is bool:
        out: Any = parse_bool(value, key, where)
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (isinstance(value, float) and not (math.isfinite(value) and value.is_integer())):
            raise ConfigError(f"{_where(where)}{key!r} must be a whole number, not {_show(value)}", key)
        out = int(value)
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{_where(where)}{key!r} must be a number, not {_show(value)}", key)
        out = float(value)
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{_where(where)}{key!r} must be a string, not {_show(value)}", key)
        out = value
    else:
        origin = typing.get_origin(tp) or tp
        if origin in (dict, list, tuple) and not isinstance(value, origin if origin is not tuple else (list, tuple)):
            kind = {dict: "an object", list: "a list", tuple: "a list"}[origin]
            raise ConfigError(f"{_where(where)}{key!r} must be {kind}, not {_show(value)}", key)
        out = value
    if choices and out not in choices:
        raise ConfigError(f"{_where(where)}{key!r} must be one of {', '.join(map(str, choices))}, not {_show(value)}",
                          key)
    return out


def from_dict(cls: type[T], data: Any, where: str = "", prefix: str = "",
              defaults: Optional[dict] = None) -> T:
    """An instance of the dataclass ``cls`` from ``data`` (a dict, e.g. parsed JSON), checked
    strictly (see the module docstring). ``where`` names the file in messages; ``defaults``
    fills required fields that ``data`` lacks. Raises ConfigError."""
    if not isinstance(data, dict):
        what = f"{prefix[:-1]!r}" if prefix else "the settings"
        raise ConfigError(f"{_where(where)}{what} must be a JSON object, not {_show(data)}",
                          prefix[:-1] or None)
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for name in data:
        if name not in known:
            close = difflib.get_close_matches(str(name), list(known), n=1)
            hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
            raise ConfigError(f"{_where(where)}unknown setting {prefix + str(name)!r}{hint}", prefix + str(name))
    kwargs = {}
    for name, f in known.items():
        if name in data:
            kwargs[name] = convert(data[name], hints.get(name, Any), prefix + name, where, f.metadata.get("choices"))
        elif defaults and name in defaults:
            kwargs[name] = defaults[name]
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_where(where)}missing setting {prefix + name!r}", prefix + name)
    return cls(**kwargs)


def from_json_text(cls: type[T], text: str, where: str = "", defaults: Optional[dict] = None) -> T:
    """``from_dict`` on JSON text; malformed JSON is a ConfigError too."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{_where(where)}not valid JSON ({exc})") from None
    return from_dict(cls, data, where=where, defaults=defaults)


def from_json_file(cls: type[T], path: Union[str, os.PathLike], defaults: Optional[dict] = None) -> T:
    """``from_dict`` on a JSON file; messages name the file. OSError when it can't be read."""
    path = os.fspath(path)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return from_json_text(cls, text, where=path, defaults=defaults)
