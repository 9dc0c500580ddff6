"""Entry point for `python -m callback.devtools.emulator`."""

from .cli import main

raise SystemExit(main())
