"""``plic`` command line: one module per tool, gathered into one click group.

Every failure reaches the user as one line ``plic: <message>`` and a non-zero
exit status (1: bad input or file, 2: usage, 130: interrupted). Set
``PLIC_DEBUG=1`` to see tracebacks of unexpected errors.
"""

from __future__ import annotations

import os
import sys
import warnings

import click

from plic import __version__
from plic.errors import PlicError


class PlicGroup(click.Group):
    def main(self, *args, **kwargs):
        """Usage errors as one line too (click would print the usage block first)."""
        if kwargs.get("standalone_mode", True) is False:
            return super().main(*args, **kwargs)
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `plic`: the help is the answer
                click.echo(exc.format_message())
                sys.exit(0)
            hint = f" (plic {exc.ctx.info_name} -h for help)" if exc.ctx and exc.ctx.parent else " (plic -h for help)"
            click.echo(f"plic: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("plic: aborted", err=True)
            sys.exit(1)
        except click.ClickException as exc:
            click.echo(f"plic: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except PlicError as exc:
            click.echo(f"plic: {exc}", err=True)
            sys.exit(1)
        except BrokenPipeError:  # `plic info f.plic | head`: the reader left, nothing to report
            sys.stderr.close()
            sys.exit(0)
        except KeyboardInterrupt:
            click.echo("plic: interrupted", err=True)
            sys.exit(130)
        except MemoryError:
            click.echo("plic: out of memory", err=True)
            sys.exit(1)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except OSError as exc:
            if os.environ.get("PLIC_DEBUG"):
                raise
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            click.echo(f"plic: {where}{exc.strerror or exc}", err=True)
            sys.exit(1)
        except Exception as exc:  # last resort: still one line, never a traceback
            if os.environ.get("PLIC_DEBUG"):
                raise
            click.echo(f"plic: internal error: {type(exc).__name__}: {exc} (PLIC_DEBUG=1 shows details)", err=True)
            sys.exit(2)


@click.group(cls=PlicGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="plic")
def main() -> None:
    """plic: perception-oriented learned image compression."""
    # torch/compressai deprecation chatter is not for the user of a CLI
    warnings.filterwarnings("ignore")


def _register() -> None:
    import importlib

    for name in ("compress", "decompress", "info", "import_", "train", "curves", "eval", "plot", "bdrate", "bench"):
        try:
            module = importlib.import_module(f"plic.cli.{name}")
        except ModuleNotFoundError:
            continue
        main.add_command(module.command)


_register()
