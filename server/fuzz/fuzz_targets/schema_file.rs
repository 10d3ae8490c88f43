//! The `--schemas` file parser on any text: never panics, reads no file outside its base
//! directory (one that does not exist here), and a file it accepts still types the
//! server's own topics with their built-in schemas.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use streamgate_server::fuzzing::{Schemas, ServerTopics};

fuzz_target!(|text: &str| {
    let topics = ServerTopics {
        r2: "R2".into(),
        r3: "R3".into(),
        r4: "R4".into(),
    };
    if let Ok(schemas) = Schemas::parse(text, Path::new("/nonexistent/streamgate-fuzz"), &topics) {
        for own in ["R2", "R3", "R4"] {
            let schema = schemas.for_topic(own).expect("a built-in schema");
            assert_eq!(schema.source(), "built-in", "{own}: {text:?}");
        }
    }
});
