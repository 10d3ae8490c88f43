//! `streamgate publish`: one record from flags, or one record per standard-input line over a
//! PublishStream (like kafka-console-producer), each acknowledged by the broker.

use bytes::Bytes;
use futures::StreamExt;
use streamgate::proto::{self, PublishRequest, publish_request, publish_result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::Client;
use crate::args::PublishArgs;
use crate::output;
use crate::{Exit, Failure};

/// Runs the subcommand.
pub async fn run(mut client: Client, args: PublishArgs) -> Result<(), Failure> {
    let payload = if let Some(name) = &args.name {
        Some(publish_request::Payload::PageEvent(proto::PageEvent {
            name: name.clone(),
            user: args.user.clone(),
            date: None,
            duration_ms: args.duration,
        }))
    } else {
        args.value
            .as_ref()
            .map(|v| value_payload(v.clone(), args.value_json))
            .transpose()
            .map_err(Failure::usage)?
    };
    match payload {
        Some(payload) => {
            let request = base_request(&args, args.key.clone(), payload);
            let ack = client.publish(request).await?.into_inner();
            output::print_ack(&ack, args.json).map_err(Failure::io)
        }
        None => publish_lines(client, args).await,
    }
}

/// A value as given: raw bytes, or with `as_json` JSON for the server to encode.
fn value_payload(value: String, as_json: bool) -> Result<publish_request::Payload, String> {
    if !as_json {
        return Ok(publish_request::Payload::Value(Bytes::from(value)));
    }
    let json: serde_json::Value =
        serde_json::from_str(&value).map_err(|e| format!("--value-json: not JSON ({e})"))?;
    Ok(publish_request::Payload::Json(crate::json_value::to_proto(
        json,
    )))
}

fn base_request(
    args: &PublishArgs,
    key: Option<String>,
    payload: publish_request::Payload,
) -> PublishRequest {
    PublishRequest {
        topic: args.topic.clone(),
        key: key.map(Bytes::from),
        headers: args
            .headers
            .iter()
            .map(|(k, v)| proto::Header {
                key: k.clone(),
                value: Bytes::from(v.clone()),
            })
            .collect(),
        payload: Some(payload),
        partition: args.partition,
        timestamp: None,
    }
}

/// Publishes every line of standard input; reports each failure with its line number.
async fn publish_lines(mut client: Client, args: PublishArgs) -> Result<(), Failure> {
    let (tx, rx) = mpsc::channel::<PublishRequest>(1024);
    let reader_args = (
        args.topic.clone(),
        args.key.clone(),
        args.key_delimiter.clone(),
        args.headers.clone(),
        args.partition,
        args.value_json,
    );
    let reader = tokio::spawn(async move {
        let (topic, key, delimiter, headers, partition, value_json) = reader_args;
        let template = PublishArgs {
            topic,
            name: None,
            user: None,
            duration: None,
            value: None,
            key: None,
            headers,
            partition,
            key_delimiter: None,
            json: false,
            value_json,
        };
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let (line_key, value) = match &delimiter {
                Some(d) => match line.split_once(d.as_str()) {
                    Some((k, v)) => (Some(k.to_owned()), v.to_owned()),
                    None => (key.clone(), line),
                },
                None => (key.clone(), line),
            };
            let payload = match value_payload(value, template.value_json) {
                Ok(payload) => payload,
                Err(e) => {
                    eprintln!("streamgate: skipped a line: {e}");
                    continue;
                }
            };
            let request = base_request(&template, line_key, payload);
            if tx.send(request).await.is_err() {
                break;
            }
        }
    });

    let mut results = client
        .publish_stream(ReceiverStream::new(rx))
        .await?
        .into_inner();
    let (mut published, mut failed) = (0u64, 0u64);
    while let Some(result) = results.next().await {
        let result = result?;
        match result.outcome {
            Some(publish_result::Outcome::Ack(ack)) => {
                published += 1;
                if args.json {
                    output::print_ack(&ack, true).map_err(Failure::io)?;
                }
            }
            Some(publish_result::Outcome::Error(e)) => {
                failed += 1;
                eprintln!("streamgate: line {}: {}", result.sequence + 1, e.message);
            }
            None => {}
        }
    }
    let _ = reader.await;
    eprintln!(
        "published {published} record(s) to {}{}",
        args.topic,
        if failed > 0 {
            format!(", {failed} failed")
        } else {
            String::new()
        }
    );
    if failed > 0 {
        Err(Failure::silent(Exit::Refused))
    } else {
        Ok(())
    }
}
