#!/usr/bin/env python3
"""Acknowledged consumption: read a topic in a consumer group through streamgate's Consume
RPC, handle each record, and acknowledge it once handled. Whatever was not acked when the
script stops (Ctrl-C, a crash, --count reached) is delivered again to the group.

    python consume.py R1 my-group [--from earliest] [--count 10] [--server http://127.0.0.1:8080]

The server comes from --server, else STREAMGATE_SERVER; a token from STREAMGATE_TOKEN.
"""

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import streamgate_client as sg  # noqa: E402


def handle(delivery):
    """The processing: here, print the value (one line per record). Raise to refuse it."""
    value = delivery.value or b""
    print(value.decode("utf-8", "replace"), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topic")
    parser.add_argument("group")
    parser.add_argument("--server", help="http://HOST:PORT, https://HOST:PORT or HOST:PORT")
    parser.add_argument("--from", dest="start", default="earliest",
                        help="where a partition the group never committed starts: earliest "
                             "(default) or latest")
    parser.add_argument("--count", type=int, default=0, help="stop after N records (0: never)")
    parser.add_argument("--max-outstanding", type=int, default=100,
                        help="most records delivered and not yet acked")
    parser.add_argument("--max-attempts", type=int, default=5,
                        help="deliveries of a record before it goes to the dead-letter topic "
                             "error.<topic>.<group> (0: unlimited)")
    args = parser.parse_args()

    handled = 0
    try:
        # Leaving the block half-closes the stream: the server commits what was acked and
        # ends it. Records delivered but not handled stay unacked and come back later. On
        # Ctrl-C too; a second Ctrl-C while the server commits cancels the stream instead.
        with (sg.Client(args.server) as client,
              client.consume(args.topic, args.group, start=args.start,
                             max_outstanding_records=args.max_outstanding,
                             max_delivery_attempts=args.max_attempts) as consumer):
            for p in consumer.assignment.partitions if consumer.assignment else []:
                print(f"% reading {p.topic} [{p.partition}] from offset {p.start_offset}",
                      file=sys.stderr, flush=True)
            for delivery in consumer:
                try:
                    handle(delivery)
                except Exception as error:  # not processed: ask for it again in 5 s
                    print(f"% {delivery}: {error}; nacked", file=sys.stderr)
                    delivery.nack(delay=5)
                    continue
                delivery.ack()
                handled += 1
                if handled == args.count:
                    break
    except KeyboardInterrupt:
        sys.exit(130)  # 128 + SIGINT, as a shell reports it, and no traceback
    except sg.StreamgateError as error:
        sys.exit(f"{error}")


if __name__ == "__main__":
    main()
