"""``python -m plic`` runs the command line."""

from plic.cli import main

main()
