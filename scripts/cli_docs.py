"""Write docs/cli.md from the CLI's own --help texts (`python scripts/cli_docs.py`).

tests/test_cli.py fails when docs/cli.md is out of date or a command is undocumented.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from leads.cli import iter_commands, main

DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def render() -> str:
    parts = [
        "# Command-line reference\n",
        "Generated from `--help` by `python scripts/cli_docs.py`; do not edit by hand.\n",
    ]
    with click.Context(main, info_name="leads", terminal_width=100) as ctx:
        parts.append("## leads\n\n```\n" + main.get_help(ctx).rstrip() + "\n```\n")
    for full_name, command in iter_commands():
        names = full_name.split()[1:]
        ctx = click.Context(main, info_name="leads", terminal_width=100)
        for name in names:
            parent = ctx.command
            assert isinstance(parent, click.Group)
            ctx = click.Context(parent.commands[name], info_name=name, parent=ctx, terminal_width=100)
        parts.append(f"## {full_name}\n\n```\n" + command.get_help(ctx).rstrip() + "\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if DOCS.read_text(encoding="utf-8") == text else 1)
    DOCS.write_text(text, encoding="utf-8")
    print(f"wrote {DOCS}")
