"""``python -m service`` is the ``moderation`` command."""

from service.cli import main

main()
