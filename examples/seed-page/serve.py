"""Serves the original analytics page beside a streamgate server: this folder's files, and
/analytics passed through to the server (default http://127.0.0.1:8080, or the first
argument), so that the page's EventSource("/analytics") is same-origin, as it was in the
application it comes from. Standard library only."""

import http.server
import pathlib
import sys
import urllib.request

UPSTREAM = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
HERE = pathlib.Path(__file__).parent


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(HERE), **kwargs)

    def do_GET(self):
        if self.path != "/analytics":
            return super().do_GET()
        with urllib.request.urlopen(UPSTREAM + "/analytics") as upstream:
            self.send_response(upstream.status)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.end_headers()
            # Line by line, flushed, so each event reaches the page when the server sends it.
            try:
                for line in upstream:
                    self.wfile.write(line)
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the page went away


if __name__ == "__main__":
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 8000), Handler)
    print(f"the original page: http://127.0.0.1:8000/ (events from {UPSTREAM}/analytics)")
    server.serve_forever()
