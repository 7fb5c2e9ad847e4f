"""``python -m flowpipe`` runs the CLI."""

from flowpipe.cli import main

main()
