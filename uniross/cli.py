"""The ``uniross`` command: one typer app; each group of commands lives in its own module and registers here."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="uniross",
    help="UniROSS onboard stack: service, simulated vehicle, monitoring, recording, replay and analysis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from uniross import cli_run

    cli_run.register(app)
    try:
        from uniross import cli_tools
    except ImportError:  # pragma: no cover - tools module lands separately
        return
    cli_tools.register(app)


def main() -> None:
    _register()
    app()


if __name__ == "__main__":
    main()
