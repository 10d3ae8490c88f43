"""Generates the Python stubs of the streamgate API from the repository's proto/ directory.

    python -m streamgate_client.generate          # (re)generate if the protos changed
    python -m streamgate_client.generate --force  # regenerate anyway

Importing streamgate_client does the same when the stubs are missing or stale; see _stubs.
"""

import argparse
import sys

from ._stubs import generate, proto_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Generate the streamgate Python stubs.")
    parser.add_argument("--force", action="store_true", help="regenerate even if current")
    args = parser.parse_args(argv)
    out = generate(force=args.force)
    print(f"streamgate stubs in {out} are current with {proto_dir()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
