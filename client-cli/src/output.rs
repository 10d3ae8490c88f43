//! How records, acknowledgements and assignments are printed: a readable line by default,
//! one JSON object per line with `--json` (text as strings, other bytes as base64).

use std::cell::RefCell;
use std::io::Write;

use bytes::Bytes;
use prost::Message as _;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};
use streamgate::proto::{Assignment, PageEvent, PublishResponse, Record};
use streamgate::time;

use crate::encoded::RecordLine;

fn rfc3339(ts: Option<&prost_types::Timestamp>) -> Value {
    ts.and_then(time::to_millis)
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|d| Value::String(d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
        .unwrap_or(Value::Null)
}

/// Bytes as a JSON value under `name`: a string when UTF-8, else base64 under `name_base64`.
fn put_bytes(object: &mut Map<String, Value>, name: &str, bytes: Option<&[u8]>) {
    match bytes {
        None => {
            object.insert(name.to_owned(), Value::Null);
        }
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => {
                object.insert(name.to_owned(), Value::String(text.to_owned()));
            }
            Err(_) => {
                object.insert(format!("{name}_base64"), Value::String(BASE64.encode(b)));
            }
        },
    }
}

fn page_event_json(event: &PageEvent) -> Value {
    json!({
        "name": event.name,
        "user": event.user,
        "date": rfc3339(event.date.as_ref()),
        "duration": event.duration_ms,
    })
}

/// The JSON form of a record.
pub fn record_json(record: &Record) -> Value {
    let mut object = Map::new();
    object.insert("topic".into(), json!(record.topic));
    object.insert("partition".into(), json!(record.partition));
    object.insert("offset".into(), json!(record.offset));
    object.insert("timestamp".into(), rfc3339(record.timestamp.as_ref()));
    put_bytes(&mut object, "key", record.key.as_deref());
    let headers: Vec<Value> = record
        .headers
        .iter()
        .map(|h| {
            let mut header = Map::new();
            header.insert("key".into(), json!(h.key));
            put_bytes(&mut header, "value", Some(&h.value));
            Value::Object(header)
        })
        .collect();
    object.insert("headers".into(), Value::Array(headers));
    put_bytes(&mut object, "value", record.value.as_deref());
    if let Some(event) = &record.page_event {
        object.insert("page_event".into(), page_event_json(event));
    }
    if let Some(decoded) = &record.decoded {
        object.insert("decoded".into(), crate::json_value::from_proto(decoded));
    }
    if !record.decode_error.is_empty() {
        object.insert("decode_error".into(), json!(record.decode_error));
    }
    Value::Object(object)
}

/// Text with control characters escaped, so one record stays on one line.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .flat_map(char::escape_debug)
        .collect::<String>()
        .replace("\\\"", "\"")
        .replace("\\'", "'")
}

/// Writes `bytes` as [`printable`] would, without building a string when there is nothing
/// to escape (printable ASCII other than `\`: nearly every record).
fn write_printable(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    // No early exit: a fold over every byte is vectorised, and a value that needs escaping
    // is read whole by the escaping anyway.
    let needs_escaping = bytes.iter().fold(false, |any, &b| {
        any | !(0x20..0x7f).contains(&b) | (b == b'\\')
    });
    if !needs_escaping {
        out.write_all(bytes)
    } else {
        out.write_all(printable(bytes).as_bytes())
    }
}

/// Writes an RFC 3339 UTC time with milliseconds (`2026-11-22T03:30:23.303Z`), or `-`.
fn write_time(out: &mut impl Write, ts: Option<&prost_types::Timestamp>) -> std::io::Result<()> {
    thread_local! {
        /// The last second written and its text up to the seconds: records come in bursts
        /// of the same second, and formatting a date is most of the cost of a line.
        static LAST_SECOND: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    let Some(t) = ts
        .and_then(time::to_millis)
        .and_then(chrono::DateTime::from_timestamp_millis)
    else {
        return out.write_all(b"-");
    };
    LAST_SECOND.with_borrow_mut(|(second, text)| {
        if *second != t.timestamp() {
            *second = t.timestamp();
            *text = t.format("%Y-%m-%dT%H:%M:%S").to_string();
        }
        out.write_all(text.as_bytes())
    })?;
    let millis = t.timestamp_subsec_millis().min(999);
    let digits = [
        b'.',
        b'0' + (millis / 100) as u8,
        b'0' + (millis / 10 % 10) as u8,
        b'0' + (millis % 10) as u8,
        b'Z',
    ];
    out.write_all(&digits)
}

/// Prints one record: `topic/partition@offset  time  key=KEY  VALUE`, or its JSON form.
pub fn print_record(out: &mut impl Write, record: &Record, as_json: bool) -> std::io::Result<()> {
    if as_json {
        return writeln!(out, "{}", record_json(record));
    }
    write_line(
        out,
        &Line {
            topic: record.topic.as_bytes(),
            partition: record.partition,
            offset: record.offset,
            timestamp: record.timestamp.as_ref(),
            key: record.key.as_deref(),
            value: record.value.as_deref(),
            decoded: record.decoded.as_ref(),
            decode_error: &record.decode_error,
        },
    )
}

/// Prints one record received encoded (see [`crate::encoded`]), as [`print_record`] does.
pub fn print_encoded(out: &mut impl Write, record: &Bytes, as_json: bool) -> std::io::Result<()> {
    let invalid = |e: prost::DecodeError| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the server sent a record that does not decode: {e}"),
        )
    };
    if as_json {
        let record = Record::decode(record.clone()).map_err(invalid)?;
        return print_record(out, &record, true);
    }
    let line = RecordLine::decode(record.clone()).map_err(invalid)?;
    write_line(
        out,
        &Line {
            topic: &line.topic,
            partition: line.partition,
            offset: line.offset,
            timestamp: line.timestamp.as_ref(),
            key: line.key.as_deref(),
            value: line.value.as_deref(),
            decoded: line.decoded.as_ref(),
            decode_error: &line.decode_error,
        },
    )
}

/// What a text line shows of a record: the fields [`crate::line_mask`] asks for.
struct Line<'a> {
    topic: &'a [u8],
    partition: i32,
    offset: i64,
    timestamp: Option<&'a prost_types::Timestamp>,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    /// The decoded value, shown instead of `value` (`--decode`).
    decoded: Option<&'a prost_types::Value>,
    /// Why the value did not decode, shown after it.
    decode_error: &'a str,
}

fn write_line(out: &mut impl Write, line: &Line<'_>) -> std::io::Result<()> {
    let mut number = itoa::Buffer::new();
    write_printable(out, line.topic)?;
    out.write_all(b"/")?;
    out.write_all(number.format(line.partition).as_bytes())?;
    out.write_all(b"@")?;
    out.write_all(number.format(line.offset).as_bytes())?;
    out.write_all(b"  ")?;
    write_time(out, line.timestamp)?;
    out.write_all(b"  key=")?;
    match line.key {
        Some(key) => write_printable(out, key)?,
        None => out.write_all(b"-")?,
    }
    out.write_all(b"  ")?;
    match (line.decoded, line.value) {
        (Some(decoded), _) => {
            serde_json::to_writer(&mut *out, &crate::json_value::from_proto(decoded))?
        }
        (None, Some(value)) => write_printable(out, value)?,
        (None, None) => out.write_all(b"(null)")?,
    }
    if !line.decode_error.is_empty() {
        out.write_all(b"  (not decoded: ")?;
        write_printable(out, line.decode_error.as_bytes())?;
        out.write_all(b")")?;
    }
    out.write_all(b"\n")
}

/// Prints one record of a Consume stream: as `print_record`, plus its delivery attempt (in
/// the JSON object, or as a `%` line on standard error for a redelivery).
pub fn print_consumed(
    out: &mut impl Write,
    record: &Record,
    delivery_attempt: u32,
    as_json: bool,
) -> std::io::Result<()> {
    if as_json {
        let mut object = record_json(record);
        object["delivery_attempt"] = json!(delivery_attempt);
        return writeln!(out, "{object}");
    }
    if delivery_attempt > 1 {
        eprintln!(
            "% delivery {delivery_attempt} of {}/{}@{}",
            record.topic, record.partition, record.offset
        );
    }
    print_record(out, record, false)
}

/// Prints an acknowledgement.
pub fn print_ack(ack: &PublishResponse, as_json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if as_json {
        let value = json!({
            "topic": ack.topic,
            "partition": ack.partition,
            "offset": ack.offset,
            "timestamp": rfc3339(ack.timestamp.as_ref()),
        });
        return writeln!(out, "{value}");
    }
    writeln!(
        out,
        "published to {} partition {} at offset {}",
        ack.topic, ack.partition, ack.offset
    )
}

/// Prints where a stream starts, on standard error like kcat's `%` lines.
pub fn print_assignment(assignment: &Assignment) {
    if assignment.partitions.is_empty() {
        eprintln!(
            "% no partitions assigned{}",
            assignment
                .group
                .as_ref()
                .map(|g| format!(" (group {g})"))
                .unwrap_or_default()
        );
    }
    for p in &assignment.partitions {
        eprintln!(
            "% reading {} [{}] from offset {} (stored {}..{})",
            p.topic, p.partition, p.start_offset, p.low_watermark, p.high_watermark
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_paths_print_what_the_general_ones_do() {
        for text in [
            &b"plain ascii 123"[..],
            b"back\\slash",
            b"tab\there",
            b"new\nline",
            b"quote\" and 'apostrophe'",
            "caf\u{e9} \u{1f600}".as_bytes(),
            b"\xff\xfe not utf-8",
            b"",
        ] {
            let mut out = Vec::new();
            write_printable(&mut out, text).expect("write");
            assert_eq!(String::from_utf8(out).expect("utf-8"), printable(text));
        }
        // Same second again (from the cache), the next one, back, and the edges.
        for millis in [
            0,
            1_795_320_765_123,
            1_795_320_765_999,
            1_795_320_766_000,
            1_795_320_765_001,
            -1,
            -1_000,
            253_402_300_799_999,
        ] {
            let ts = time::from_millis(millis);
            let mut out = Vec::new();
            write_time(&mut out, Some(&ts)).expect("write");
            assert_eq!(
                Value::String(String::from_utf8(out).expect("utf-8")),
                rfc3339(Some(&ts)),
                "{millis}"
            );
        }
    }
}
