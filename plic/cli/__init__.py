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

    for name in ("compress", "decompress", "info", "train", "curves", "eval", "plot", "bdrate", "bench"):
        try:
            module = importlib.import_module(f"plic.cli.{name}")
        except ModuleNotFoundError:
            continue
        main.add_command(module.command)


_register()
