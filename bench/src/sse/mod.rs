//! The subscribe workload over Server-Sent Events: `GET /v1/topics/{topic}/records`, each
//! record one `data:` event in canonical JSON, the stream ended by the server after
//! `max_records`. It asks for the fields the gRPC workload's `read_mask` names, so both
//! read the same records, and parses every event's JSON, as a browser's `JSON.parse` would.

mod events;

use http::{Method, StatusCode, header};
use serde_json::Value;
use tonic::Status;
use tonic::body::Body;

use events::Events;

use crate::connect::{error, json_record};
use crate::read::{self, Reading, ended_early, idle_bounded, within_idle};
use crate::scan::{Counting, Scan, server_filter};
use crate::stats::Tally;
use crate::web::{Web, next_data, whole};
use crate::{Client, Failure};

/// Reads `records` records of `topic` from the earliest offset over SSE, as
/// [`read::subscribe`](crate::read::subscribe) does over gRPC.
pub async fn subscribe(web: &Web, topic: &str, records: u64, tally: &Tally) -> Result<(), Failure> {
    let fields = streamgate_cli::line_mask().paths.join(",");
    let path =
        format!("/v1/topics/{topic}/records?from=earliest&max_records={records}&fields={fields}");
    let request = web
        .request(Method::GET, &path)
        .header(header::ACCEPT, "text/event-stream")
        .body(Body::empty());
    let (parts, mut body) = web.clone().send(request).await?.into_parts();
    // Refused before the stream started (no token, no permission): Connect's error JSON.
    if parts.status != StatusCode::OK {
        let body = whole(body).await?;
        return Err(error::status(parts.status, &body).into());
    }
    let (mut events, mut reading) = (Events::default(), Reading::new(tally));
    while let Some(data) = within_idle(topic, records, next_data(&mut body)).await? {
        events.push(&data?);
        while let Some(event) = events.next() {
            let json: Value = serde_json::from_slice(&event.data)
                .map_err(|e| Status::internal(format!("an event's data: {e}")))?;
            // A stream that fails ends with `event: error` and the error's Connect JSON.
            if event.kind == "error" {
                let status = error::from_json(&json)
                    .unwrap_or_else(|| Status::unknown(format!("the stream ended with {json}")));
                return Err(status.into());
            }
            reading.count(1);
        }
    }
    Ok(())
}

/// Reads `topic` from the earliest offset over SSE through `filter` ('' for none) until
/// every partition's end marker has come, as [`read::scan`] does over gRPC. SSE sends no
/// Assignment: each partition starts at its low watermark, from ListTopics (`client`). The
/// bytes received are each event's `data` (the record's JSON), without the `id:`/`data:`
/// framing.
pub async fn scan(
    web: &Web,
    client: &Client,
    topic: &str,
    filter: &str,
    tally: &Tally,
) -> Result<(), Failure> {
    let info = read::topic_info(client, topic)
        .await?
        .ok_or_else(|| Failure::refused(format!("no topic {topic}")))?;
    let starts = info
        .partitions
        .iter()
        .map(|p| (p.partition, p.low_watermark));
    let mut counting = Counting::new(Scan::new(starts), tally);
    let fields = streamgate_cli::line_mask().paths.join(",");
    let mut path = format!("/v1/topics/{topic}/records?from=earliest&fields={fields}");
    let filter = server_filter(filter);
    if !filter.is_empty() {
        path.push_str("&filter=");
        path.push_str(&percent_encode(&filter));
    }
    let request = web
        .request(Method::GET, &path)
        .header(header::ACCEPT, "text/event-stream")
        .body(Body::empty());
    let (parts, mut body) = web.clone().send(request).await?.into_parts();
    if parts.status != StatusCode::OK {
        let body = whole(body).await?;
        return Err(error::status(parts.status, &body).into());
    }
    let mut events = Events::default();
    loop {
        let next = idle_bounded(next_data(&mut body), || counting.stalled(topic)).await?;
        let Some(data) = next else {
            return Err(ended_early(topic));
        };
        events.push(&data?);
        while let Some(event) = events.next() {
            let json: Value = serde_json::from_slice(&event.data)
                .map_err(|e| Status::internal(format!("an event's data: {e}")))?;
            if event.kind == "error" {
                let status = error::from_json(&json)
                    .unwrap_or_else(|| Status::unknown(format!("the stream ended with {json}")));
                return Err(status.into());
            }
            counting.message([json_record(&json)], event.data.len() as u64);
            if counting.is_done() {
                return Ok(());
            }
        }
    }
}

/// `text` for a URL's query: every byte but the unreserved ones (RFC 3986) as `%XX`.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_travels_percent_encoded_in_the_query() {
        assert_eq!(
            percent_encode("key == 'P1' || (\nvalue.duration > 100\n)"),
            "key%20%3D%3D%20%27P1%27%20%7C%7C%20%28%0Avalue.duration%20%3E%20100%0A%29"
        );
        assert_eq!(percent_encode("a-b_c.d~9"), "a-b_c.d~9");
        // UTF-8, byte by byte.
        assert_eq!(percent_encode("é"), "%C3%A9");
    }
}
