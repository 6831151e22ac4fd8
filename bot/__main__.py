"""Command line: `python -m bot chat | ask | train` (see README)."""

from bot.cli import main

raise SystemExit(main())
