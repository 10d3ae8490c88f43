//! `parse_duration_range` (`MIN..MAX` in ms: the server's `--supplier-duration` and the
//! CLI's `supplier set --duration`) on any text: never panics; what it accepts is two
//! integers that read back from `MIN..MAX`; and once the supplier's validation accepts a
//! range, `0 <= MIN <= MAX` (the parser checks only the syntax, the supplier the order).
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate::page_event::parse_duration_range;
use streamgate::topic::TopicName;
use streamgate_server::fuzzing::SupplierSettings as Settings;

fuzz_target!(|text: &str| {
    let parsed = parse_duration_range(text);
    // The CLI's flag parser is the same function.
    assert_eq!(streamgate_cli::parse::duration_range(text), parsed);
    let Ok((min, max)) = parsed else {
        return;
    };
    assert!(text.contains(".."), "{text:?}");
    assert_eq!(
        parse_duration_range(&format!("{min}..{max}")),
        Ok((min, max))
    );
    let settings = Settings {
        rate_per_second: 1.0,
        pages: vec!["P1".into()],
        users: vec!["U1".into()],
        min_duration_ms: min,
        max_duration_ms: max,
        topic: TopicName::new("R2").expect("a valid topic"),
    };
    if settings.validate(1000.0).is_ok() {
        assert!(0 <= min && min <= max, "{text:?} -> {min}..{max} validated");
    } else {
        assert!(min < 0 || min > max, "{text:?} -> {min}..{max} refused");
    }
});
