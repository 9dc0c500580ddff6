"""Entry point for `python -m callback.emulator`."""

from .cli import main

raise SystemExit(main())
