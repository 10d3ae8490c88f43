//! Logging untrusted and recurring things safely: [`LogThrottle`] logs a recurring problem
//! at most once per interval with how many times it happened meanwhile (a broker outage or a
//! flood of bad records cannot flood the log), and [`preview`] turns untrusted bytes into a
//! short excerpt that, logged with `?`, can never forge a log line.

use std::time::Duration;

use tokio::time::Instant;

/// Counts occurrences and says when one may be logged.
#[derive(Debug)]
pub struct LogThrottle {
    every: Duration,
    last: Option<Instant>,
    since_last: u64,
}

impl LogThrottle {
    /// At most one log line per `every`.
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            since_last: 0,
        }
    }

    /// Records one occurrence. Returns `Some(n)` when this one should be logged, `n` being
    /// the occurrences since the last logged one, this one included.
    pub fn hit(&mut self) -> Option<u64> {
        self.since_last += 1;
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.every)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.since_last))
    }
}

#[cfg(test)]
mod throttle_tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn logs_the_first_then_once_per_interval_with_the_count() {
        let mut throttle = LogThrottle::new(Duration::from_secs(5));
        assert_eq!(throttle.hit(), Some(1));
        assert_eq!(throttle.hit(), None);
        assert_eq!(throttle.hit(), None);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(throttle.hit(), Some(3));
        assert_eq!(throttle.hit(), None);
    }
}

/// Characters kept in a preview.
const MAX_CHARS: usize = 120;

/// Decodes `bytes` as UTF-8 (invalid sequences become U+FFFD) and keeps the first
/// `MAX_CHARS` characters, marking a cut with `…`. Log it with `?` so that tracing escapes
/// quotes, newlines and control characters: an untrusted value can never forge a log line.
pub fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod preview_tests {
    use super::*;

    #[test]
    fn keeps_short_text_and_cuts_long_text_on_a_character_boundary() {
        assert_eq!(preview(b"hello"), "hello");
        let long = "é".repeat(200);
        let cut = preview(long.as_bytes());
        assert_eq!(cut.chars().count(), MAX_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn replaces_invalid_utf8_and_escapes_when_debug_printed() {
        assert_eq!(preview(&[0x61, 0xff, 0x62]), "a\u{fffd}b");
        assert_eq!(format!("{:?}", preview(b"a\nb\"")), r#""a\nb\"""#);
    }
}
