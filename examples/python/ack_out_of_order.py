#!/usr/bin/env python3
"""Acks in any order, commits as a contiguous prefix: what a Consume reconnect gets back.

Publishes --records records to a fresh topic, reads them all in a fresh consumer group,
acks --acks of them chosen at random and sent in a random order, disconnects, reconnects in
the same group and compares what comes back with what the server promises: per partition,
everything from the first unacked offset on. That is every unacked record, plus the acked
records that lie above their partition's first unacked one (Kafka keeps one committed
offset per partition, so an ack above a gap cannot be committed). Nothing below the gap
comes back.

    python ack_out_of_order.py [--records 1000] [--acks 500] [--seed 7] [--cancel]

The server must run with --auto-create-topics (the topic is created by the first publish).
It comes from --server, else STREAMGATE_SERVER; a token from STREAMGATE_TOKEN. Exit status
0 when the records that came back are exactly the promised ones, 1 otherwise.
"""

import argparse
import collections
import pathlib
import random
import sys
import time
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import streamgate_client as sg  # noqa: E402

# No delivery may come again by itself while the example runs.
NO_REDELIVERY = 3600
# Deadline of each stream: room for a group join on a real broker, not a measure of speed.
PATIENCE = 120


def positions(deliveries):
    return {(d.partition, d.offset) for d in deliveries}


def take(consumer, count):
    """The next `count` deliveries of `consumer`."""
    taken = []
    for delivery in consumer:
        taken.append(delivery)
        if len(taken) == count:
            return taken
    raise SystemExit(f"the stream ended after {len(taken)} of {count} deliveries")


def promised(delivered, acked):
    """Per partition, every delivered record at or above the first unacked offset."""
    expected = set()
    for partition in {p for p, _ in delivered}:
        unacked = [o for p, o in delivered - acked if p == partition]
        if unacked:
            gap = min(unacked)
            expected |= {(p, o) for p, o in delivered if p == partition and o >= gap}
    return expected


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", help="http://HOST:PORT, https://HOST:PORT or HOST:PORT")
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--acks", type=int, default=500, help="how many of them to ack")
    parser.add_argument("--seed", type=int, help="seed of the random choice (default: random)")
    parser.add_argument("--cancel", action="store_true",
                        help="disconnect by cancelling the stream, not by half-closing it")
    args = parser.parse_args()
    if not 0 <= args.acks <= args.records:
        parser.error("--acks must be between 0 and --records")
    rng = random.Random(args.seed)
    run = uuid.uuid4().hex[:8]
    topic, group = f"ack-order-{run}", f"ack-order-{run}"
    client = sg.Client(args.server)

    # 1. The records, keyed so that they spread over the topic's partitions.
    published = set()
    records = ({"topic": topic, "value": f"v{i}", "key": f"k{i}"} for i in range(args.records))
    for outcome in client.publish_stream(records):
        if not outcome.ok:
            raise SystemExit(f"publish: {outcome.error}")
        published.add((outcome.ack.partition, outcome.ack.offset))
    per_partition = collections.Counter(p for p, _ in published)
    print(f"published {len(published)} records to {topic}: "
          f"{dict(sorted(per_partition.items()))} per partition")

    # 2. Read them all, ack a random half in a random order, disconnect.
    first = client.consume(topic, group, start="earliest", ack_deadline=NO_REDELIVERY,
                           max_outstanding_records=args.records, timeout=PATIENCE)
    delivered = take(first, args.records)
    if positions(delivered) != published or any(d.delivery_attempt != 1 for d in delivered):
        raise SystemExit("the first stream did not deliver each record once")
    to_ack = rng.sample(delivered, args.acks)  # a random sample, in a random order
    for i in range(0, len(to_ack), 50):
        first.ack(to_ack[i:i + 50])
    if args.cancel:
        # The protocol does not confirm acks: give them a moment to reach the server. An ack
        # still in flight at the cancel is lost, and its record comes back (at least once).
        time.sleep(1)
        first.cancel()
        print("disconnected: cancelled the stream")
    else:
        first.close()  # half-close: returns once the server committed and ended the stream
        print("disconnected: half-closed the stream (the server confirmed the commit)")

    acked = positions(to_ack)
    expected = promised(published, acked)
    unacked = published - acked
    print(f"acked {len(acked)}, unacked {len(unacked)}; promised back: {len(expected)} = "
          f"{len(unacked)} unacked + {len(expected & acked)} acked above a gap")

    # 3. Reconnect in the same group. A marker published to the end of every partition is
    # that partition's last record, so once every marker arrived, everything else did too.
    with client.consume(topic, group, ack_deadline=NO_REDELIVERY,
                        max_outstanding_records=args.records + 100,
                        timeout=PATIENCE) as second:
        for p in second.assignment.partitions:
            print(f"  resumed {p.topic} [{p.partition}] at offset {p.start_offset} "
                  f"(stored {p.low_watermark}..{p.high_watermark})")
        markers = {(m.partition, m.offset) for m in (
            client.publish(topic, "marker", partition=p.partition)
            for p in second.assignment.partitions)}
        seen = []
        while not markers <= positions(seen):
            seen.extend(take(second, 1))
        second.ack(seen)
    got = positions(seen) - markers
    duplicates = len(seen) - len(positions(seen))
    print(f"after the reconnect: {len(got)} records, {len(got & unacked)} of them unacked, "
          f"{len(got & acked)} acked above a gap")

    missing, surplus = expected - got, got - expected
    if missing or surplus or duplicates:
        print(f"NOT AS PROMISED: {len(missing)} missing {sorted(missing)[:10]}, "
              f"{len(surplus)} more {sorted(surplus)[:10]}, {duplicates} twice")
        sys.exit(1)
    print("as promised: every unacked record came back, with the acked ones above each "
          "partition's first gap, and nothing else")


if __name__ == "__main__":
    main()
