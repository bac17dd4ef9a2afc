"""`python -m models`: the classifier's command line on its own."""

from models.cli import cli

cli()
