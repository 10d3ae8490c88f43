//! The PageEvent JSON wire format, compatible with the seed's Spring application:
//! `{"name":"P1","user":"U2","date":"2022-09-11T19:41:07.331+00:00","duration":96}`.
//!
//! Decoding borrows from the input (`Cow<str>` fields) so that hot paths such as the
//! analytics worker do not allocate per record. Dates are read as Jackson writes them
//! (ISO-8601 with `+00:00`, `+0000` or `Z`) and as epoch milliseconds, which Jackson also
//! accepts; they are always written in the seed's ISO form. A date is accepted only within
//! the range that form can write (years -262143 to 262142), so that every decoded event
//! encodes back to itself.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// The content type streamgate puts on every PageEvent record, as Spring Cloud Stream does.
pub const CONTENT_TYPE: &str = "application/json";

/// A PageEvent: one visit of one page by one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageEvent<'a> {
    /// Page name.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// User name.
    #[serde(borrow)]
    pub user: Cow<'a, str>,
    /// When the visit happened, epoch milliseconds.
    #[serde(
        rename = "date",
        deserialize_with = "date_millis",
        serialize_with = "iso_date"
    )]
    pub date_ms: i64,
    /// How long the visit lasted, milliseconds.
    #[serde(rename = "duration")]
    pub duration_ms: i64,
}

/// Why a value is not a PageEvent.
#[derive(Debug, thiserror::Error)]
#[error("not a PageEvent: {0}")]
pub struct NotAPageEvent(#[from] serde_json::Error);

impl<'a> PageEvent<'a> {
    /// Decodes a record value, borrowing strings from it where no unescaping is needed.
    pub fn decode(value: &'a [u8]) -> Result<Self, NotAPageEvent> {
        Ok(serde_json::from_slice(value)?)
    }

    /// Appends the seed's JSON form of this event to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        // Serializing plain strings and integers into a Vec cannot fail.
        serde_json::to_writer(out, self).unwrap_or_else(|_| unreachable!("PageEvent JSON"));
    }

    /// The seed's JSON form of this event.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        self.encode_into(&mut out);
        out
    }

    /// A copy that owns its strings.
    pub fn into_owned(self) -> PageEvent<'static> {
        PageEvent {
            name: Cow::Owned(self.name.into_owned()),
            user: Cow::Owned(self.user.into_owned()),
            date_ms: self.date_ms,
            duration_ms: self.duration_ms,
        }
    }
}

/// Formats epoch milliseconds the way the seed's Jackson does:
/// `2022-09-11T19:41:07.331+00:00`. Out-of-range values are clamped to chrono's range.
pub fn format_date(millis: i64) -> String {
    let date = DateTime::<Utc>::from_timestamp_millis(millis).unwrap_or(if millis < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    });
    // `AutoSi`/`Millis` with `use_z = false` writes `+00:00`, exactly Jackson's form.
    date.to_rfc3339_opts(SecondsFormat::Millis, false)
}

/// Parses an ISO-8601 date as Jackson writes or reads it, into epoch milliseconds.
pub fn parse_date(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|d| d.timestamp_millis())
}

/// Parses a duration range in milliseconds written `MIN..MAX` (as the supplier's flags and
/// the CLI take it). Only the syntax is checked here; the supplier checks MIN <= MAX.
pub fn parse_duration_range(text: &str) -> Result<(i64, i64), String> {
    let (min, max) = text
        .split_once("..")
        .ok_or_else(|| format!("expected MIN..MAX in milliseconds, got {text:?}"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<i64>()
            .map_err(|e| format!("{v:?} in {text:?}: {e}"))
    };
    Ok((parse(min)?, parse(max)?))
}

fn iso_date<S: serde::Serializer>(millis: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_date(*millis))
}

fn date_millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    struct DateVisitor;

    impl Visitor<'_> for DateVisitor {
        type Value = i64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an ISO-8601 date string or epoch milliseconds")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            // Beyond chrono's range `format_date` would clamp the date: refuse it rather than
            // re-encode a different instant (the page_event fuzz target asserts the round trip).
            DateTime::<Utc>::from_timestamp_millis(v)
                .map(|_| v)
                .ok_or_else(|| E::custom("epoch milliseconds out of range"))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            let v = i64::try_from(v).map_err(|_| E::custom("epoch milliseconds out of range"))?;
            self.visit_i64(v)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
            parse_date(v).ok_or_else(|| E::custom(format!("unparseable date {v:?}")))
        }
    }

    deserializer.deserialize_any(DateVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPRING: &[u8] =
        br#"{"name":"P1","user":"U2","date":"2022-09-11T19:41:07.331+00:00","duration":96}"#;

    #[test]
    fn decodes_spring_json_and_borrows() {
        let event = PageEvent::decode(SPRING).expect("decodes");
        assert_eq!(event.name, "P1");
        assert!(matches!(event.name, Cow::Borrowed(_)));
        assert_eq!(event.user, "U2");
        assert_eq!(event.date_ms, 1_662_925_267_331);
        assert_eq!(event.duration_ms, 96);
    }

    #[test]
    fn round_trips_byte_for_byte() {
        let event = PageEvent::decode(SPRING).expect("decodes");
        assert_eq!(event.to_json(), SPRING);
    }

    #[test]
    fn accepts_other_jackson_dates() {
        for (date, millis) in [
            ("1662925267331", 1_662_925_267_331),
            ("\"2022-09-11T19:41:07.331+0000\"", 1_662_925_267_331),
            ("\"2022-09-11T19:41:07.331Z\"", 1_662_925_267_331),
            ("\"2022-09-11T21:41:07.331+02:00\"", 1_662_925_267_331),
            ("\"2022-09-11T19:41:07+00:00\"", 1_662_925_267_000),
        ] {
            let json = format!(r#"{{"name":"P1","user":"U1","date":{date},"duration":1}}"#);
            let event = PageEvent::decode(json.as_bytes()).expect(date);
            assert_eq!(event.date_ms, millis, "{date}");
        }
    }

    #[test]
    fn unescapes_and_keeps_non_ascii() {
        let json = r#"{"name":"pag\u00e9 \"x\"","user":"Zoë","date":0,"duration":5,"extra":true}"#;
        let event = PageEvent::decode(json.as_bytes()).expect("decodes");
        assert_eq!(event.name, "pagé \"x\"");
        assert_eq!(event.user, "Zoë");
        let again = PageEvent::decode(&event.to_json())
            .expect("re-decodes")
            .into_owned();
        assert_eq!(again, event);
    }

    #[test]
    fn rejects_what_is_not_a_page_event() {
        for bad in [
            &b"hello"[..],
            b"",
            b"{}",
            b"[1,2]",
            br#"{"name":"P1","user":"U1","date":"yesterday","duration":1}"#,
            br#"{"name":"P1","user":"U1","date":0}"#,
            br#"{"name":1,"user":"U1","date":0,"duration":1}"#,
            br#"{"name":"P1","user":"U1","date":0,"duration":"long"}"#,
            b"\xff\xfe",
        ] {
            assert!(
                PageEvent::decode(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn refuses_dates_its_iso_form_cannot_write() {
        let event = |date: i64| {
            let json = format!(r#"{{"name":"P1","user":"U1","date":{date},"duration":1}}"#);
            PageEvent::decode(json.as_bytes()).map(|e| e.date_ms)
        };
        // Once accepted and clamped to year 262142 on the way out, which decoded differently.
        assert!(event(9_000_000_000_000_000).is_err());
        assert!(event(i64::MAX).is_err());
        assert!(event(i64::MIN).is_err());
        // Years past 9999 and before 0 are written with a sign and read back.
        for millis in [300_000_000_000_000, -62_167_219_200_001] {
            assert_eq!(event(millis).ok(), Some(millis));
            let json = PageEvent::decode(
                format!(r#"{{"name":"P1","user":"U1","date":{millis},"duration":1}}"#).as_bytes(),
            )
            .expect("decodes")
            .to_json();
            assert_eq!(
                PageEvent::decode(&json).expect("re-decodes").date_ms,
                millis
            );
        }
    }

    #[test]
    fn parses_duration_ranges() {
        assert_eq!(parse_duration_range("0..9000"), Ok((0, 9000)));
        assert_eq!(parse_duration_range(" 10 .. 20 "), Ok((10, 20)));
        assert!(parse_duration_range("10-20").is_err());
        assert!(parse_duration_range("a..b").is_err());
    }

    #[test]
    fn formats_extreme_dates_without_panicking() {
        assert_eq!(format_date(0), "1970-01-01T00:00:00.000+00:00");
        let _ = format_date(i64::MAX);
        let _ = format_date(i64::MIN);
    }
}
