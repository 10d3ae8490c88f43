//! `PageEvent::decode` on any bytes: never panics, and whatever it accepts survives
//! decode -> to_json -> decode unchanged; the seed's ISO form, once written, is stable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate::page_event::{PageEvent, format_date, parse_date};

fuzz_target!(|data: &[u8]| {
    let Ok(event) = PageEvent::decode(data) else {
        return;
    };
    let json = event.to_json();
    let again = PageEvent::decode(&json).unwrap_or_else(|e| {
        panic!(
            "{event:?} encodes to {:?}, which does not decode: {e}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(again, event, "{:?}", String::from_utf8_lossy(&json));
    // The written form is a fixed point: encoding the re-decoded event gives the same bytes.
    assert_eq!(again.to_json(), json);
    // The date is written in the seed's ISO form, which reads back to the same instant.
    assert_eq!(parse_date(&format_date(event.date_ms)), Some(event.date_ms));
});
