"""Settings made fit to write into files others read (dataset cards, run configs, reports):
credentials redacted, paths shortened.

* :func:`redact`: a copy of a settings object (dicts, lists, strings) with secrets replaced by
  ``"***"``: the values of keys that name a secret (``password``, ``secret``, ``api_key``,
  ``access_token``, ``credentials``...) and the passwords, tokens and secret query parameters
  inside URLs (``redis://user:pw@host`` -> ``redis://user:***@host``). Empty values stay as
  they are, so a reader still sees whether one was set.
* :func:`display_path`: a path relative to a base folder when it lies inside it, else its file
  name; the absolute path only with ``full=True`` (the user's opt-in).
* :func:`public_settings`: both: :func:`redact`, then every absolute path in a string value
  through :func:`display_path`.

Qt-free and standard library only: the export (dataset card) and the training code
(adapter / run configs) use the same functions.
"""

from __future__ import annotations

import os
import re
from typing import Any, Optional
from urllib.parse import parse_qsl

__all__ = ["MASK", "redact", "redact_url", "is_secret_key", "display_path", "public_settings"]

MASK = "***"

_SECRET_WORDS = {"password", "passwd", "pwd", "passphrase", "secret", "secrets", "credential", "credentials",
                 "cookie", "cookies", "authorization", "apikey", "privatekey", "accesskey", "secretkey",
                 "sessionkey", "clientsecret", "bearer", "sas"}
_KEY_OWNERS = {"api", "access", "private", "secret", "account", "master", "encryption", "signing", "client",
               "session", "storage", "subscription"}
# Tokenizer settings name special tokens (pad_token, eos_token...): those are not credentials.
_TEXT_TOKENS = {"pad", "eos", "bos", "unk", "sep", "cls", "mask", "start", "end", "special", "chat", "im",
                "additional", "max", "num", "min", "new", "total", "per", "eot", "fim", "tool", "prefix",
                "suffix", "middle", "image", "audio", "video", "think"}
_WHOLE_KEYS = {"pass", "auth", "token", "tokens", "key"}
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)([^/?#@]*)@")


def _words(key: str) -> list[str]:
    key = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key)  # camelCase -> camel_Case
    return [w for w in re.split(r"[^A-Za-z0-9]+", key.lower()) if w]


def is_secret_key(key: Any) -> bool:
    """Whether a setting named ``key`` holds a credential (``password``, ``redis_password``,
    ``apiKey``, ``hf_token``, ``access_key``...; not ``max_tokens`` or ``pad_token``)."""
    if not isinstance(key, str):
        return False
    words = _words(key)
    if not words:
        return False
    if "".join(words) in _WHOLE_KEYS and len(words) == 1:
        return words[0] != "tokens"
    joined = "".join(words)
    if any(w in _SECRET_WORDS for w in words) or joined in _SECRET_WORDS:
        return True
    if any(joined.endswith(s) for s in ("password", "passwd", "apikey", "secretkey", "accesskey", "privatekey")):
        return True
    last, before = words[-1], (words[-2] if len(words) > 1 else "")
    if last == "token":
        return before not in _TEXT_TOKENS
    if last == "key":
        return before in _KEY_OWNERS
    return False


def redact_url(text: str) -> str:
    """``text`` with every URL's password (or lone user token) and secret query values masked."""
    return _URL.sub(lambda m: _redact_one_url(m.group(0)), text)


def _redact_one_url(url: str) -> str:
    m = _USERINFO.match(url)
    if m:
        user = m.group(2)
        if ":" in user:
            user = user.split(":", 1)[0] + ":" + MASK
        elif user:
            user = MASK  # a token given as the user name (https://TOKEN@host)
        url = m.group(1) + user + "@" + url[m.end():]
    if "?" in url:
        head, _, query = url.partition("?")
        query, hash_, fragment = query.partition("#")
        parts = []
        for piece in query.split("&"):
            name, eq, _value = piece.partition("=")
            pairs = parse_qsl(piece, keep_blank_values=True)
            key = pairs[0][0] if pairs else name
            parts.append(f"{name}={MASK}" if eq and is_secret_key(key) and _value else piece)
        url = head + "?" + "&".join(parts) + hash_ + fragment
    return url


def redact(obj: Any) -> Any:
    """A copy of ``obj`` with credentials masked (see the module's doc)."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if is_secret_key(k) and v not in (None, "", False) and not isinstance(v, (dict, list, tuple)):
                out[k] = MASK
            elif is_secret_key(k) and isinstance(v, (dict, list, tuple)) and v:
                out[k] = _mask_all(v)
            else:
                out[k] = redact(v)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact(v) for v in obj) if isinstance(obj, tuple) else [redact(v) for v in obj]
    if isinstance(obj, str):
        return redact_url(obj) if "://" in obj else obj
    return obj


def _mask_all(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _mask_all(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_mask_all(v) for v in obj]
    return obj if obj in (None, "", False) else MASK


def display_path(path: Any, base: Optional[str] = None, full: bool = False) -> str:
    """``path`` as shown in a file others read: relative to ``base`` when inside it, else the
    file name; the absolute path with ``full=True``."""
    if path is None or path == "":
        return ""
    p = os.path.abspath(os.fspath(path))
    if full:
        return p
    if base:
        b = os.path.abspath(os.fspath(base))
        try:
            if os.path.commonpath([p, b]) == b:
                return os.path.relpath(p, b)
        except ValueError:  # other drive (Windows)
            pass
    return os.path.basename(p.rstrip(os.sep)) or p


def _looks_like_path(value: str) -> bool:
    return ("://" not in value and "\n" not in value and len(value) < 4096 and os.path.isabs(value)
            and (os.sep in value or (os.altsep or os.sep) in value))


def public_settings(obj: Any, base: Optional[str] = None, full_paths: bool = False) -> Any:
    """``obj`` with credentials redacted and absolute paths shown by :func:`display_path`."""

    def paths(o: Any) -> Any:
        if isinstance(o, dict):
            return {k: paths(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [paths(v) for v in o]
        if isinstance(o, str) and _looks_like_path(o):
            return display_path(o, base, full_paths)
        return o

    return paths(redact(obj))
