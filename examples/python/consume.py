#!/usr/bin/env python3
"""Acknowledged consumption: read a topic in a consumer group through streamgate's Consume
RPC, handle each record, and acknowledge it once handled. Whatever was not acked when the
script stops (Ctrl-C, a crash, --count reached) is delivered again to the group.

    python consume.py R1 my-group [--from earliest] [--count 10] [--server http://127.0.0.1:8080]

The server comes from --server, else STREAMGATE_SERVER; a token from STREAMGATE_TOKEN.
"""

import argparse
import os
import pathlib
import signal
import sys
import threading

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

    # Ctrl-C and SIGTERM are taken by a thread of their own, never as a KeyboardInterrupt:
    # Python raises that between any two bytecodes, also inside a lock's `with` just after
    # the lock was taken, which then stays taken and hangs the half-close for good.
    stopper = Stopper()
    handled = 0
    try:
        # Leaving the block half-closes the stream: the server commits what was acked and
        # ends it. Records delivered but not handled stay unacked and come back later.
        with (sg.Client(args.server) as client,
              client.consume(args.topic, args.group, start=args.start,
                             max_outstanding_records=args.max_outstanding,
                             max_delivery_attempts=args.max_attempts) as consumer):
            stopper.watch(consumer)
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
    except sg.StreamgateError as error:
        if stopper.signal is None:
            sys.exit(f"{error}")
    if stopper.signal is not None:
        sys.exit(128 + stopper.signal)  # as a shell reports a death by it: 130 for Ctrl-C


class Stopper:
    """Waits for SIGINT or SIGTERM on a thread of its own. The first one ends the loop over
    the stream and half-closes it (the server commits what was acked), or, before the stream
    is open, exits at once; a second one, while the server still commits, cancels it."""

    SIGNALS = {signal.SIGINT, signal.SIGTERM}

    def __init__(self):
        # Blocked before any other thread starts (gRPC's included), so all of them inherit
        # the mask and the signals wait for sigwait() below.
        signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)
        self.signal = None
        self._consumer = None
        self._lock = threading.Lock()
        threading.Thread(target=self._run, name="signals", daemon=True).start()

    def watch(self, consumer):
        with self._lock:
            self._consumer = consumer

    def _run(self):
        received = signal.sigwait(self.SIGNALS)
        with self._lock:
            self.signal = received
            if self._consumer is None:
                os._exit(128 + received)  # nothing was delivered yet, so nothing to commit
            self._close()
        signal.sigwait(self.SIGNALS)
        self._consumer.cancel()

    def _close(self):
        threading.Thread(target=_close_quietly, args=(self._consumer,), daemon=True).start()


def _close_quietly(consumer):
    """Half-closes the stream; an error that ended it is the main thread's to report."""
    try:
        consumer.close()
    except sg.StreamgateError:
        pass

if __name__ == "__main__":
    main()
