//! `streamgate supplier`: the status of the server's PageEvent supplier, and control of it.

use std::io::Write;

use serde_json::json;
use streamgate::proto::{
    ControlSupplierRequest, StringList, SupplierAction, SupplierSettingsUpdate, SupplierStatus,
};
use streamgate::time;

use crate::Client;
use crate::Failure;
use crate::args::{SupplierArgs, SupplierCommand};

/// Runs the subcommand.
pub async fn run(mut client: Client, args: SupplierArgs) -> Result<(), Failure> {
    let request = match args.action {
        SupplierCommand::Status => ControlSupplierRequest::default(),
        SupplierCommand::Start => ControlSupplierRequest {
            action: SupplierAction::Start as i32,
            settings: None,
        },
        SupplierCommand::Stop => ControlSupplierRequest {
            action: SupplierAction::Stop as i32,
            settings: None,
        },
        SupplierCommand::Set(set) => ControlSupplierRequest {
            action: SupplierAction::Unspecified as i32,
            settings: Some(SupplierSettingsUpdate {
                interval: set.interval.map(time::duration_from_std),
                rate_per_second: set.rate,
                pages: set.pages.map(|values| StringList { values }),
                users: set.users.map(|values| StringList { values }),
                min_duration_ms: set.duration.map(|(min, _)| min),
                max_duration_ms: set.duration.map(|(_, max)| max),
                topic: set.topic,
            }),
        },
    };
    let status = client.control_supplier(request).await?.into_inner();
    print_status(&status, args.json).map_err(Failure::io)
}

fn print_status(status: &SupplierStatus, as_json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let settings = status.settings.clone().unwrap_or_default();
    let last = status.last_event.as_ref().map(|e| {
        json!({"name": e.name, "user": e.user, "duration": e.duration_ms,
               "date": e.date.as_ref().and_then(time::to_millis)})
    });
    if as_json {
        let value = json!({
            "running": status.running,
            "rate_per_second": settings.rate_per_second,
            "pages": settings.pages,
            "users": settings.users,
            "min_duration_ms": settings.min_duration_ms,
            "max_duration_ms": settings.max_duration_ms,
            "topic": settings.topic,
            "events_sent": status.events_sent,
            "errors": status.errors,
            "achieved_rate_per_second": status.achieved_rate_per_second,
            "last_event": last,
            "last_error": status.last_error,
        });
        return writeln!(out, "{value}");
    }
    writeln!(
        out,
        "supplier  : {}",
        if status.running { "running" } else { "stopped" }
    )?;
    writeln!(
        out,
        "rate      : {} events/s (achieved {:.1}/s)",
        settings.rate_per_second, status.achieved_rate_per_second
    )?;
    writeln!(out, "topic     : {}", settings.topic)?;
    writeln!(out, "pages     : {}", settings.pages.join(","))?;
    writeln!(out, "users     : {}", settings.users.join(","))?;
    writeln!(
        out,
        "duration  : {}..{} ms",
        settings.min_duration_ms, settings.max_duration_ms
    )?;
    writeln!(
        out,
        "sent      : {} ({} errors)",
        status.events_sent, status.errors
    )?;
    if let Some(e) = &status.last_event {
        writeln!(
            out,
            "last      : {} {} {} ms",
            e.name,
            e.user.clone().unwrap_or_default(),
            e.duration_ms.unwrap_or_default()
        )?;
    }
    if let Some(error) = &status.last_error {
        writeln!(out, "last error: {error}")?;
    }
    Ok(())
}
