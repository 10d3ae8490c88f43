//! The `--auth-file` parser and the permission strings on any text: never panic; the
//! principals of an accepted file have non-empty, unique names; a parsed glob is the text
//! after the `:`, and matches that text with its `*`s taken out.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use streamgate_server::fuzzing::{Glob, Permission, parse_auth_file};

fuzz_target!(|text: &str| {
    if let Ok(principals) = parse_auth_file(text) {
        let mut names = HashSet::new();
        for principal in &principals {
            assert!(!principal.name.trim().is_empty(), "{text:?}");
            assert!(names.insert(principal.name.clone()), "{text:?}");
        }
    }
    for line in text.lines() {
        if let Ok(permission) = line.parse::<Permission>()
            && let Permission::Publish(glob) | Permission::Subscribe(glob) | Permission::Group(glob) =
                &permission
        {
            let pattern = line.split_once(':').map(|(_, p)| p).unwrap_or_default();
            assert!(glob.matches(&pattern.replace('*', "")), "{line:?}");
            assert_eq!(Glob::new(pattern), *glob);
        }
    }
});
