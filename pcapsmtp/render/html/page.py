"""Jinja2 rendering of the report and diff pages (pure: data in, one HTML string out)."""
from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache, cache
from pathlib import Path
from typing import Any

__all__ = ["csp", "embed_json", "render_diff", "render_report"]

#: Parts of the data the template draws itself (not needed again in the embedded JSON).
_DRAWN_BY_TEMPLATE = frozenset({"timeline", "servers", "reason_cause"})
_HERE = Path(__file__).resolve().parent / "templates"
COLORS = {"tls": "#2e7d32", "plaintext": "#d84315", "aborted": "#8e24aa", "incomplete": "#757575",
          "none": "#2e7d32", "client": "#1565c0", "server": "#d84315", "middlebox": "#6a1b9a",
          "unknown": "#757575"}


@lru_cache(maxsize=1)
def _env() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined
    env = Environment(loader=FileSystemLoader(str(_HERE)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.globals["color"] = lambda k: COLORS.get(str(k), "#9e9e9e")
    return env


@cache
def _asset(name: str) -> str:
    text = (_HERE / name).read_text(encoding="utf-8")
    if "</" in text and ("</script" in text.lower() or "</style" in text.lower()):
        raise ValueError(f"{name} must not contain a closing tag")
    return text


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def csp(style: str, script: str) -> str:
    """Nothing may load from anywhere (no connect, no image, no font, no frame); only this
    page's own style and script run, identified by their hashes (so an injected script or
    event handler would not run even if escaping failed)."""
    return ("default-src 'none'; img-src data:; style-src " + _hash(style) + "; script-src "
            + _hash(script) + "; base-uri 'none'; form-action 'none'")


def embed_json(data: Any) -> str:
    """JSON for a ``<script type="application/json">`` element: ``<``, ``>`` and ``&`` as
    ``\\u`` escapes, so no text from a capture can close the element or open a comment."""
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _render(template: str, data: dict[str, Any], title: str) -> str:
    style, script = _asset("report.css"), _asset("report.js")
    from markupsafe import Markup
    return str(_env().get_template(template).render(
        d=data, title=title, style=Markup(style), script=Markup(script),
        csp=csp(style, script),
        payload=Markup(embed_json({k: v for k, v in data.items() if k not in _DRAWN_BY_TEMPLATE}))))


def render_report(data: dict[str, Any], title: str = "pcapsmtp report") -> str:
    return _render("report.html.j2", data, title)


def render_diff(data: dict[str, Any], title: str = "pcapsmtp diff") -> str:
    return _render("report.html.j2", data, title)
