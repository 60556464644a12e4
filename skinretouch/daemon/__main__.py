"""``python -m skinretouch.daemon [DIR...] [--config FILE] [--once]``: the daemon without the CLI.

Mirrors ``skinretouch watch``. ``--retoucher-factory MODULE:ATTR`` (not shown in
``--help``) swaps the pipeline for another callable ``(Config) -> retoucher``; the
daemon's tests use it to run the real daemon process on a fake pipeline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import load_config
from ..errors import ConfigError
from ..logs import configure_logging
from .service import EXIT_USAGE, run_watch
from .worker import DEFAULT_RETOUCHER


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m skinretouch.daemon", description="the hot-folder daemon")
    parser.add_argument("folders", nargs="*", type=Path, metavar="DIR")
    parser.add_argument("--config", type=Path, metavar="FILE")
    parser.add_argument("--once", action="store_true", help="process what is there, then exit")
    parser.add_argument("--retoucher-factory", default=DEFAULT_RETOUCHER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"skinretouch watch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(config.logging, stream=sys.stdout)
    return run_watch(
        config, list(args.folders), once=args.once, config_path=args.config,
        retoucher_factory=args.retoucher_factory,
    )


if __name__ == "__main__":
    sys.exit(main())
