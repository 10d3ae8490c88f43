//! The `text/event-stream` format, read as a browser's `EventSource` reads it: lines end in
//! LF, CRLF or CR; `field: value` lines (one space after the colon is not part of the value);
//! lines starting with `:` are comments (the server's keep-alives); a blank line dispatches
//! the event, its `data` lines joined with LF, unless it had none.

use bytes::BytesMut;

/// One dispatched event.
#[derive(Debug, PartialEq, Eq)]
pub struct Event {
    /// Its `event:` field; empty for the default type, `message`.
    pub kind: String,
    /// Its `data:` lines, joined with LF.
    pub data: Vec<u8>,
}

/// Splits a stream, in whatever chunks it arrives, into events.
#[derive(Debug, Default)]
pub struct Events {
    buffer: BytesMut,
    kind: String,
    data: Vec<u8>,
    has_data: bool,
}

impl Events {
    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole event, if one is in.
    pub fn next(&mut self) -> Option<Event> {
        loop {
            let end = memchr::memchr2(b'\n', b'\r', &self.buffer)?;
            let terminator = match (self.buffer[end], self.buffer.get(end + 1)) {
                (b'\r', Some(b'\n')) => 2,
                // A CR last in the buffer: whether an LF follows is not known yet.
                (b'\r', None) => return None,
                _ => 1,
            };
            let line = self.buffer.split_to(end + terminator);
            if end == 0 {
                if let Some(event) = self.dispatch() {
                    return Some(event);
                }
            } else {
                self.field(&line[..end]);
            }
        }
    }

    fn field(&mut self, line: &[u8]) {
        if line.starts_with(b":") {
            return;
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                if std::mem::replace(&mut self.has_data, true) {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
            }
            b"event" => self.kind = String::from_utf8_lossy(value).into_owned(),
            // `id` and `retry` serve reconnecting, which a bench run does not do.
            _ => {}
        }
    }

    fn dispatch(&mut self) -> Option<Event> {
        let kind = std::mem::take(&mut self.kind);
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        let data = std::mem::take(&mut self.data);
        Some(Event { kind, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(stream: &[u8], chunk: usize) -> Vec<(String, String)> {
        let mut events = Events::default();
        let mut got = Vec::new();
        for part in stream.chunks(chunk) {
            events.push(part);
            while let Some(event) = events.next() {
                got.push((event.kind, String::from_utf8(event.data).expect("UTF-8")));
            }
        }
        got
    }

    #[test]
    fn events_split_out_of_any_chunking_and_line_ending() {
        let stream = b"retry: 2000\nid: 0:1\ndata: {\"a\":1}\n\n: keep-alive\n\nid: 0:2\r\ndata:{\"b\":2}\r\n\r\ndata: one\rdata: two\r\revent: error\ndata: {\"code\":\"internal\"}\n\n";
        let expected = [
            ("", "{\"a\":1}"),
            ("", "{\"b\":2}"),
            ("", "one\ntwo"),
            ("error", "{\"code\":\"internal\"}"),
        ]
        .map(|(k, d)| (k.to_owned(), d.to_owned()));
        for chunk in [1, 2, 5, stream.len()] {
            assert_eq!(all(stream, chunk), expected, "chunks of {chunk}");
        }
    }

    #[test]
    fn an_event_without_data_is_not_dispatched_and_a_cut_one_waits() {
        assert!(all(b"id: 3\n\nevent: x\n\n", 4).is_empty());
        let mut events = Events::default();
        events.push(b"data: half");
        assert_eq!(events.next(), None);
        events.push(b"\n\r");
        assert_eq!(events.next(), None);
        events.push(b"\n");
        let event = events.next().expect("an event");
        assert_eq!((event.kind.as_str(), &event.data[..]), ("", &b"half"[..]));
    }
}
