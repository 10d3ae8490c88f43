//! `streamgate stats`: WatchPageStats as a live terminal table (one row per page, with a
//! bar), or as one JSON object per message.

use std::io::{IsTerminal, Write};

use crate::interrupt::interruptible;
use futures::StreamExt;
use serde_json::json;
use streamgate::page_event::format_date;
use streamgate::proto::{PageStats, WatchPageStatsRequest};
use streamgate::time;

use crate::Client;
use crate::Failure;
use crate::args::StatsArgs;

/// Width of the longest bar, in characters.
const BAR: u64 = 40;

/// Runs the subcommand until the stream ends, `--count` messages, or Ctrl-C.
pub async fn run(mut client: Client, args: StatsArgs) -> Result<(), Failure> {
    let request = WatchPageStatsRequest {
        rolling: args.window.map(time::duration_from_std),
        final_only: args.final_only,
    };
    let mut stream = client.watch_page_stats(request).await?.into_inner();
    // Redraw in place on a terminal; append when piped (a log of every tick).
    let live = !args.json && std::io::stdout().is_terminal();
    let mut seen = 0;
    loop {
        let message = interruptible(stream.next()).await?;
        let Some(message) = message else {
            return Ok(());
        };
        let stats = message?;
        let mut out = std::io::stdout().lock();
        if args.json {
            writeln!(out, "{}", to_json(&stats)).map_err(Failure::io)?;
        } else {
            if live {
                // Clear the screen and go home: a table that updates in place.
                write!(out, "\x1b[2J\x1b[H").map_err(Failure::io)?;
            }
            write!(out, "{}", table(&stats)).map_err(Failure::io)?;
        }
        out.flush().map_err(Failure::io)?;
        seen += 1;
        if args.count.is_some_and(|n| seen >= n) {
            return Ok(());
        }
    }
}

fn millis(ts: Option<&prost_types::Timestamp>) -> i64 {
    ts.and_then(time::to_millis).unwrap_or(0)
}

fn rolling_text(stats: &PageStats) -> String {
    stats.rolling.map_or_else(
        || "?".into(),
        |d| {
            time::duration_to_std(&d)
                .map_or_else(|| "?".into(), |d| humantime::format_duration(d).to_string())
        },
    )
}

/// The table for one message.
fn table(stats: &PageStats) -> String {
    let mut text = format!(
        "window {} .. {}{}   rolling {}{}\n",
        format_date(millis(stats.window_start.as_ref())),
        format_date(millis(stats.window_end.as_ref())),
        if stats.r#final { "  (final)" } else { "" },
        rolling_text(stats),
        if stats.skipped_ticks > 0 {
            format!("   ({} ticks skipped)", stats.skipped_ticks)
        } else {
            String::new()
        },
    );
    if stats.folded_pages > 0 {
        // The server folds the smallest pages into "(other)" to keep a message in bounds.
        text.push_str(&format!(
            "{} pages with the smallest counts are folded into (other)\n",
            stats.folded_pages
        ));
    }
    let width = stats
        .pages
        .iter()
        .map(|p| p.page.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    text.push_str(&format!(
        "{:<width$}  {:>8}  {:>8}\n",
        "page", "window", "rolling"
    ));
    let top = stats
        .pages
        .iter()
        .map(|p| p.count.max(p.rolling_count))
        .max()
        .unwrap_or(0)
        .max(1);
    for page in &stats.pages {
        // The bar shows the window count: what the final flag is about.
        let bar = (page.count * BAR).div_ceil(top) as usize;
        text.push_str(&format!(
            "{:<width$}  {:>8}  {:>8}  {}\n",
            page.page,
            page.count,
            page.rolling_count,
            "█".repeat(bar)
        ));
    }
    if stats.pages.is_empty() {
        text.push_str("(no pages counted yet)\n");
    }
    text
}

fn to_json(stats: &PageStats) -> serde_json::Value {
    json!({
        "window_start": format_date(millis(stats.window_start.as_ref())),
        "window_end": format_date(millis(stats.window_end.as_ref())),
        "final": stats.r#final,
        "rolling_ms": stats.rolling.as_ref().and_then(time::duration_to_millis).unwrap_or(0),
        "skipped_ticks": stats.skipped_ticks,
        "folded_pages": stats.folded_pages,
        "generated_at": format_date(millis(stats.generated_at.as_ref())),
        "pages": stats.pages.iter().map(|p| json!({
            "page": p.page,
            "count": p.count,
            "rolling_count": p.rolling_count,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamgate::proto::PageCount;

    fn sample() -> PageStats {
        PageStats {
            window_start: Some(prost_types::Timestamp {
                seconds: 1_662_925_265,
                nanos: 0,
            }),
            window_end: Some(prost_types::Timestamp {
                seconds: 1_662_925_270,
                nanos: 0,
            }),
            r#final: true,
            pages: vec![
                PageCount {
                    page: "P1".into(),
                    count: 10,
                    rolling_count: 8,
                },
                PageCount {
                    page: "P2".into(),
                    count: 0,
                    rolling_count: 2,
                },
            ],
            rolling: Some(prost_types::Duration {
                seconds: 5,
                nanos: 0,
            }),
            skipped_ticks: 0,
            generated_at: None,
            folded_pages: 0,
        }
    }

    #[test]
    fn folded_pages_show_only_when_some_are_folded() {
        assert!(!table(&sample()).contains("folded"));
        assert_eq!(to_json(&sample())["folded_pages"], 0);
        let folded = PageStats {
            folded_pages: 1234,
            ..sample()
        };
        assert!(
            table(&folded).contains("1234 pages with the smallest counts are folded into (other)"),
            "{}",
            table(&folded)
        );
        assert_eq!(to_json(&folded)["folded_pages"], 1234);
    }

    #[test]
    fn table_has_a_row_and_a_bar_per_page() {
        let text = table(&sample());
        assert!(text.contains("(final)"), "{text}");
        let p1 = text.lines().find(|l| l.starts_with("P1")).expect("P1 row");
        assert!(p1.contains("10") && p1.contains(&"█".repeat(40)), "{p1}");
        let p2 = text.lines().find(|l| l.starts_with("P2")).expect("P2 row");
        assert!(!p2.contains('█'), "{p2}");
    }

    #[test]
    fn json_names_every_field() {
        let value = to_json(&sample());
        assert_eq!(value["final"], true);
        assert_eq!(value["rolling_ms"], 5000);
        assert_eq!(value["pages"][0]["count"], 10);
        assert_eq!(value["window_start"], "2022-09-11T19:41:05.000+00:00");
    }
}
