//! The CLI's `supplier set --rate` and `publish --header` parsers on any text: never
//! panic; a rate is a number with at most one `/s` after it, and reads back the same from
//! `{rate}` and `{rate}/s`; a header splits at its first `=` and joins back to the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate_cli::parse::{header, rate};

fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

fuzz_target!(|text: &str| {
    if let Ok(r) = rate(text) {
        let number = text.strip_suffix("/s").unwrap_or(text);
        assert!(!number.ends_with("/s"), "{text:?}: more than one /s");
        assert!(
            same(number.parse::<f64>().expect("a number"), r),
            "{text:?}"
        );
        for written in [format!("{r}"), format!("{r}/s")] {
            let again = rate(&written).unwrap_or_else(|e| panic!("{written:?}: {e}"));
            assert!(same(again, r), "{text:?} -> {r} -> {written:?} -> {again}");
        }
    }
    match header(text) {
        Ok((key, value)) => {
            assert!(!key.contains('='), "{text:?}");
            assert_eq!(format!("{key}={value}"), text);
        }
        Err(_) => assert!(!text.contains('='), "{text:?}"),
    }
});
