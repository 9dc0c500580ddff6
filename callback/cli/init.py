"""`wecom init [PATH]`: write the commented example config (shipped in the package) to PATH."""

from __future__ import annotations

import argparse
from importlib.resources import files
from pathlib import Path
from typing import Any

from callback.errors import WecomError

EXAMPLE = "config.example.toml"


def example() -> str:
    """The commented example config, every setting with its default and where to find it."""
    return files("callback").joinpath(EXAMPLE).read_text(encoding="utf-8")


def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.path)
    text = example()  # first: a broken install leaves no empty file behind
    try:
        with path.open("x", encoding="utf-8") as out:
            out.write(text)
    except FileExistsError:
        raise WecomError(
            f"{path} exists and was left as it is; remove it first, or give another path: "
            "wecom init PATH"
        ) from None
    except OSError as exc:
        raise WecomError(f"{path}: cannot write ({exc.strerror})") from None
    print(f"wrote {path}: fill in [apps.NAME] (each key says where its value is in the WeCom admin")
    print("console), then check it with `wecom doctor`. With this file, `wecom serve` no longer")
    print("runs the sandbox.")
    return 0


def add_parser(sub: Any) -> None:
    init = sub.add_parser("init", help="write the commented example config.toml")
    init.add_argument("path", nargs="?", default="config.toml", help="default: ./config.toml")
    init.set_defaults(func=cmd_init)
