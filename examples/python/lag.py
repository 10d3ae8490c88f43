#!/usr/bin/env python3
"""How far behind a consumer group is: per partition its committed offset, the log-end
offset and the lag, as kafka-consumer-groups.sh --describe prints them, then the total.

    python lag.py billing [--server http://127.0.0.1:8080]

The server comes from --server, else STREAMGATE_SERVER; a token from STREAMGATE_TOKEN (it
needs group:<group> or groups:manage:<group>).
"""

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import streamgate_client as sg  # noqa: E402

COLUMNS = ("GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
           "CONSUMER-ID", "HOST", "CLIENT-ID")


def rows(group):
    """The table's rows for a GroupDescription, '-' where a value is missing."""
    for p in group.partitions:
        current = str(p.committed_offset) if p.HasField("committed_offset") else "-"
        yield (group.group, p.topic, str(p.partition), current, str(p.log_end_offset),
               str(p.lag), p.member_id or "-", p.host or "-", p.client_id or "-")


def table(lines):
    lines = [COLUMNS, *lines]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
                     for line in lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("group")
    parser.add_argument("--server", help="http://HOST:PORT, https://HOST:PORT or HOST:PORT")
    args = parser.parse_args(argv)
    with sg.Client(args.server) as client:
        try:
            group = client.describe_group(args.group)
        except sg.StreamgateError as error:
            print(f"lag: {error}", file=sys.stderr)
            return 1
    print(table(list(rows(group))))
    print(f"\nTOTAL-LAG {group.total_lag}  STATE {group.state}")
    if group.members_unavailable:
        print(f"note: {group.members_unavailable}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
