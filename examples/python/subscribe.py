#!/usr/bin/env python3
"""Subscribe to topics through streamgate and print one line per record.

    python subscribe.py R1 R3 --from earliest --exit-at-end
    python subscribe.py R1 --group billing --count 10
    python subscribe.py R1 --from -5          # the last five records of each partition
    python subscribe.py R1 --from 2026-11-22T10:00:00+00:00
    python subscribe.py R2 --filter 'value.duration > 8000' --decode
    python subscribe.py orders --from earliest --filter "headers.region == 'eu'"

The server comes from --server, else STREAMGATE_SERVER; a token from STREAMGATE_TOKEN.
"""

import argparse
import datetime
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import streamgate_client as sg  # noqa: E402


def start(text):
    """earliest | latest | OFFSET | -N | an ISO 8601 time."""
    if text in ("earliest", "latest"):
        return text
    try:
        return int(text)
    except ValueError:
        return datetime.datetime.fromisoformat(text)


def line(record):
    when = record.timestamp.ToDatetime(tzinfo=datetime.timezone.utc).isoformat(
        timespec="milliseconds")
    key = record.key.decode("utf-8", "replace") if record.HasField("key") else "null"
    if record.HasField("decoded"):  # only with --decode
        value = "json " + json.dumps(sg.decoded(record), ensure_ascii=False,
                                     separators=(",", ":"))
    elif record.HasField("page_event"):
        e = record.page_event
        value = f"PageEvent name={e.name} user={e.user} duration_ms={e.duration_ms}"
    else:
        value = record.value.decode("utf-8", "replace")
    if record.decode_error:
        value += f"  (not decoded: {record.decode_error})"
    return f"{record.topic}/{record.partition}@{record.offset}  {when}  key={key}  {value}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topics", nargs="+")
    parser.add_argument("--server", help="http://HOST:PORT, https://HOST:PORT or HOST:PORT")
    parser.add_argument("--from", dest="start", type=start, help=start.__doc__)
    parser.add_argument("--group", help="consumer group (commits as records are delivered)")
    parser.add_argument("--count", type=int, help="end after N records")
    parser.add_argument("--exit-at-end", action="store_true",
                        help="end at the end offsets the stream started with")
    parser.add_argument("--filter", metavar="CEL",
                        help="only records this CEL expression matches, over topic, partition, "
                             "offset, timestamp, key, headers and value (decoded by the "
                             "topic's schema, or parsed when it is JSON), e.g. "
                             "'value.amount > 1000'")
    parser.add_argument("--decode", action="store_true",
                        help="print each value decoded as JSON by its topic's schema (or the "
                             "JSON it is)")
    args = parser.parse_args()

    client = sg.Client(args.server)
    try:
        with client.subscribe(args.topics, start=args.start, group=args.group,
                              max_records=args.count, stop_at_end=args.exit_at_end,
                              filter=args.filter, decode=args.decode) as stream:
            for p in stream.assignment.partitions if stream.assignment else []:
                print(f"% reading {p.topic} [{p.partition}] from offset {p.start_offset} "
                      f"(stored {p.low_watermark}..{p.high_watermark})", file=sys.stderr)
            for record in stream:
                print(line(record), flush=True)
    except KeyboardInterrupt:
        sys.exit(130)
    except sg.StreamgateError as error:
        sys.exit(f"{error}")


if __name__ == "__main__":
    main()
