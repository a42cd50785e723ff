"""Read docker-compose.yml as Compose does, without a docker-compose binary.

:func:`load` parses the YAML (anchors and ``<<`` merge keys included), interpolates every
string value (:func:`interpolate`) and validates the result against the Compose
Specification's JSON schema (``tests/data/compose_spec.json``, see ``tests/data/README.md``),
then makes the cross-reference checks ``docker compose config`` makes: every ``depends_on``
names a service, every named volume is declared.

Interpolation follows the Compose Specification: ``$$`` is a literal ``$``; ``$VAR`` and
``${VAR}``; ``${VAR:-default}`` (unset or empty) and ``${VAR-default}`` (unset);
``${VAR:?error}`` and ``${VAR?error}``; ``${VAR:+replacement}`` and ``${VAR+replacement}``. A
``$`` in a default is refused (nested interpolation is not needed here), as is any other use
of ``$``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA = Path(__file__).resolve().parent / "data" / "compose_spec.json"

_NAME = r"[_A-Za-z][_A-Za-z0-9]*"
_TOKEN = re.compile(
    rf"\$(?:(?P<escaped>\$)|(?P<named>{_NAME})"
    rf"|\{{(?P<braced>{_NAME})(?:(?P<op>:?[-?+])(?P<arg>[^}}$]*))?\}}|(?P<invalid>))"
)


class ComposeFileError(ValueError):
    """The file is not a valid Compose file (what ``docker compose config`` would refuse)."""


def interpolate(text: str, environ: Mapping[str, str]) -> str:
    """``text`` with its ``$`` expressions replaced from ``environ``, as Compose does."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["invalid"] is not None:
            raise ComposeFileError(f"invalid interpolation at {match.start()} in {text!r}")
        name = match["named"] or match["braced"]
        value = environ.get(name)
        op, arg = match["op"], match["arg"] or ""
        if op is None:
            return value or ""
        missing = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return arg if missing else str(value)
        if op.endswith("?"):
            if missing:
                raise ComposeFileError(f"required variable {name} is missing: {arg}")
            return str(value)
        return "" if missing else arg  # "+": the replacement when set

    return _TOKEN.sub(substitute, text)


def _interpolated(node: Any, environ: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, environ)
    if isinstance(node, dict):
        return {key: _interpolated(value, environ) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolated(item, environ) for item in node]
    return node


def _check_references(config: dict[str, Any]) -> None:
    services = config["services"]
    volumes = config.get("volumes") or {}
    for name, spec in services.items():
        for dependency in spec.get("depends_on") or ():
            if dependency not in services:
                raise ComposeFileError(f"service {name} depends on undefined {dependency}")
        for mount in spec.get("volumes") or ():
            source = mount.split(":")[0] if isinstance(mount, str) else mount.get("source", "")
            named = bool(source) and not source.startswith((".", "/", "~", "$"))
            if named and source not in volumes:
                raise ComposeFileError(f"service {name} mounts undeclared volume {source}")


def validate(config: Any) -> dict[str, Any]:
    """``config`` (already interpolated) checked against the schema and for references."""
    schema = json.loads(SCHEMA.read_text())
    # the schema names draft 2019-09 by an URI (http, trailing #) jsonschema does not look up
    errors = sorted(jsonschema.Draft201909Validator(schema).iter_errors(config), key=str)
    if errors:
        where = "/".join(str(part) for part in errors[0].absolute_path)
        raise ComposeFileError(f"{where or 'top level'}: {errors[0].message}")
    _check_references(config)
    return dict(config)


def load(path: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    """The Compose file at ``path`` as Compose sees it under ``environ``, validated."""
    return validate(_interpolated(yaml.safe_load(path.read_text()), environ))
