#!/usr/bin/env python3
"""Publish to a topic through streamgate: one record from the command line, or one record per
line of standard input over a single PublishStream.

    python publish.py R1 --value hello -k greeting -H source=cli
    python publish.py R1 --page P1 --user U2 --duration 96
    printf 'a\\nb\\nc\\n' | python publish.py R1 -k batch

The server comes from --server, else STREAMGATE_SERVER; a token from STREAMGATE_TOKEN.
"""

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import streamgate_client as sg  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topic")
    parser.add_argument("--server", help="http://HOST:PORT, https://HOST:PORT or HOST:PORT")
    payload = parser.add_mutually_exclusive_group()
    payload.add_argument("--value", help="a raw value (else: one record per stdin line)")
    payload.add_argument("--page", help="a PageEvent for this page name")
    parser.add_argument("--user", help="the PageEvent's user (default: U1 or U2)")
    parser.add_argument("--duration", type=int, help="the PageEvent's duration, ms")
    parser.add_argument("-k", "--key")
    parser.add_argument("-H", "--header", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("-p", "--partition", type=int)
    args = parser.parse_args()
    headers = [tuple(h.split("=", 1)) if "=" in h else (h, "") for h in args.header]
    common = dict(key=args.key, headers=headers, partition=args.partition)

    client = sg.Client(args.server)
    try:
        if args.value is not None or args.page is not None:
            event = args.page and sg.page_event(args.page, user=args.user,
                                                duration_ms=args.duration)
            ack = client.publish(args.topic, args.value, page_event=event or None, **common)
            print(f"{ack.topic}/{ack.partition}@{ack.offset}")
            return
        lines = (line.rstrip("\n") for line in sys.stdin)
        failed = 0
        for outcome in client.publish_stream(
                sg.publish_request(args.topic, line, **common) for line in lines):
            if outcome.ok:
                print(f"{outcome.ack.topic}/{outcome.ack.partition}@{outcome.ack.offset}")
            else:
                failed += 1
                print(f"line {outcome.sequence + 1}: {outcome.error}", file=sys.stderr)
        sys.exit(1 if failed else 0)
    except sg.StreamgateError as error:
        sys.exit(f"{error}")


if __name__ == "__main__":
    main()
