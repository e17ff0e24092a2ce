"""The text of ``name[:key=value,...]`` specs, shared by pruner and sampler specs."""

from __future__ import annotations

from typing import Any


def split_spec(text: str, what: str, error: type[ValueError]) -> tuple[str, dict[str, str]]:
    """``"name:a=1,b=x"`` to ``("name", {"a": "1", "b": "x"})``; the name lower-cased.

    Raises:
        error: An empty name, an item that is not ``key=value``, or a key given twice; the
            message names the spec (``what`` says what kind, e.g. ``"pruner"``).
    """
    text = text.strip()
    name, _, rest = text.partition(":")
    name = name.strip().lower()
    if not name:
        raise error(f"empty {what} name in spec {text!r}")
    options: dict[str, str] = {}
    if rest.strip():
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq or not key:
                raise error(
                    f"{what} spec {text!r}: option {item.strip()!r} must look like key=value"
                )
            if key in options:
                raise error(f"{what} spec {text!r}: option {key!r} given twice")
            options[key] = value.strip()
    return name, options


def parse_scalar(text: str) -> Any:
    """An option's text as bool (``true``/``false``), ``None`` (``none``/``null``), int, float,
    or the text itself."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
