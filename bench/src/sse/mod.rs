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

use crate::Failure;
use crate::connect::error;
use crate::read::{Reading, within_idle};
use crate::stats::Tally;
use crate::web::{Web, next_data, whole};

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
