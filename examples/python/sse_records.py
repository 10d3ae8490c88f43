#!/usr/bin/env python3
"""Follow a topic's records as Server-Sent Events, with nothing but Python's standard
library: no gRPC, no generated code. Each event's id says where every partition stands;
give it back as Last-Event-ID (--resume) and the stream goes on exactly after it.

    python sse_records.py R1 --from earliest
    python sse_records.py R1 --resume '0:15,1:7,2:3'

The server comes from --server, else STREAMGATE_SERVER (http://HOST:PORT); a token from
STREAMGATE_TOKEN, sent in the Authorization header (never in the URL).
"""

import argparse
import base64
import json
import os
import sys
import urllib.parse
import urllib.request


def base_url(server):
    return server if "://" in server else f"http://{server}"


def follow(server, topic, *, start="latest", fields=None, max_records=None,
           last_event_id=None, token=None, timeout=60):
    """Yields (event id, record as a dict) for each record of `topic`'s SSE stream, until the
    server ends it. A record's `value` and `key` are base64 in the JSON, as in every
    canonical proto3 JSON."""
    query = {"from": start}
    if fields:
        query["fields"] = ",".join(fields)
    if max_records is not None:
        query["max_records"] = str(max_records)
    url = (f"{base_url(server)}/v1/topics/{urllib.parse.quote(topic, safe='')}/records?"
           + urllib.parse.urlencode(query))
    headers = {"accept": "text/event-stream"}
    if last_event_id:
        headers["last-event-id"] = last_event_id
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        event_id, data = None, []
        for raw in response:
            line = raw.decode("utf-8").rstrip("\r\n")
            if line == "":
                if data and event_id is not None:
                    yield event_id, json.loads("\n".join(data))
                event_id, data = event_id, []
            elif line.startswith(":"):
                continue  # a keep-alive comment
            else:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "id":
                    event_id = value
                elif field == "data":
                    data.append(value)
                elif field == "event" and value == "error":
                    raise RuntimeError(f"the stream failed: {response.readline()!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("topic")
    parser.add_argument("--from", dest="start", default="latest",
                        help="earliest, latest (default) or an offset")
    parser.add_argument("--resume", help="an event id to resume after (Last-Event-ID)")
    parser.add_argument("--server", default=os.environ.get("STREAMGATE_SERVER",
                                                          "127.0.0.1:8080"))
    args = parser.parse_args()
    token = os.environ.get("STREAMGATE_TOKEN")
    try:
        for event_id, record in follow(args.server, args.topic, start=args.start,
                                       last_event_id=args.resume, token=token):
            value = base64.b64decode(record.get("value", "")).decode("utf-8", "replace")
            print(f"{record['partition']}@{record['offset']}  {value}    (id {event_id})")
    except KeyboardInterrupt:
        pass
    except urllib.error.HTTPError as e:
        print(f"refused: {e.code} {e.read().decode('utf-8', 'replace')}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
