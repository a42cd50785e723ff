"""MkDocs hook: the table of every setting on configuration.md, generated from the code.

The marker ``<!-- settings-table -->`` becomes one row per ``Settings`` field: its variable,
the command-line options that set it (read from the click commands themselves), its default
(the field's) and its line of documentation (the docstring under the field in settings.py).
So the page cannot drift from etl4all/settings.py and etl4all/options.py.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from typing import Any

import click

MARKER = "<!-- settings-table -->"


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Put the table where the page has the marker."""
    return markdown.replace(MARKER, settings_table()) if MARKER in markdown else markdown


def settings_table() -> str:
    """The Markdown table of the settings."""
    from etl4all import settings
    from etl4all.cli import cli

    options = options_by_field(cli)
    docs = field_docs(settings.Settings)
    rows = [
        "| setting | variable | option | default | what |",
        "| --- | --- | --- | --- | --- |",
    ]
    for field in dataclasses.fields(settings.Settings):
        found = options.get(field.name, [])
        envvars = sorted({o.envvar for o in found if isinstance(o.envvar, str)})
        if envvars:
            variable = ", ".join(f"`{name}`" for name in envvars)
        elif field.name in settings.FLAGS_ONLY:
            variable = "— (a flag only)"
        else:
            variable = f"`{settings.SECRET_ENV.get(field.name, 'ETL4ALL_' + field.name.upper())}`"
        flags = sorted({max(o.opts, key=len) for o in found})
        cells = [
            f"`{field.name}`",
            variable,
            ", ".join(f"`{flag}`" for flag in flags) or "—",
            default_of(field),
            cell(docs.get(field.name, "")),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def options_by_field(group: click.Group) -> dict[str, list[click.Option]]:
    """Every click option of every command, by the Settings field it sets."""
    found: dict[str, list[click.Option]] = {}
    stack: list[click.Command] = [group]
    while stack:
        command = stack.pop()
        if isinstance(command, click.Group):
            stack.extend(command.commands.values())
        for param in command.params:
            if isinstance(param, click.Option) and param.name:
                found.setdefault(param.name, []).append(param)
    return found


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of ``cls``, read from its source."""
    body = ast.parse(inspect.getsource(cls)).body[0]
    assert isinstance(body, ast.ClassDef)
    docs = {}
    for statement, following in zip(body.body, body.body[1:], strict=False):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[statement.target.id] = following.value.value
    return docs


def default_of(field: dataclasses.Field[Any]) -> str:
    """The field's default as the page shows it; None and empty read as "—"."""
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "—"
    if value is None or value == ():
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return cell(f"`{value}`")


def cell(text: str) -> str:
    """Docstring text as one table cell: reST roles and literals as Markdown, on one line."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    text = " ".join(text.replace("``", "`").split())
    # a pipe splits a table row except inside a code span
    parts = text.split("`")
    parts[::2] = [part.replace("|", "\\|") for part in parts[::2]]
    return "`".join(parts)
