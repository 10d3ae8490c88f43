//! JSON Schema schemas (draft 2020-12 unless the document's `$schema` names another), compiled
//! once by the `jsonschema` crate.

use jsonschema::error::ValidationErrorKind;
use jsonschema::{PatternOptions, ValidationError, Validator};

use super::Format;
use super::errors::{DecodeError, Violation, Violations};
use super::limits::{self, CountingWriter, DecodeLimits};

/// A compiled JSON Schema and its text (for `describe`).
pub(super) struct JsonSchema {
    validator: Validator,
    text: String,
}

/// Why a document is not a usable JSON Schema.
#[derive(Debug)]
pub(super) enum Invalid {
    /// Not JSON at all.
    NotJson(String),
    /// JSON, but not a schema the validator can compile: where in the document, and why.
    Schema { pointer: String, reason: String },
}

impl JsonSchema {
    /// Compiles `text`. References are resolved only inside the document: anything else
    /// (`https://…`, another file) fails here, at load, rather than being fetched.
    pub(super) fn compile(text: &str) -> Result<Self, Invalid> {
        let document: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Invalid::NotJson(limits::bound_message(&e.to_string())))?;
        let validator = jsonschema::options()
            // Never fetch: a schema file must not make the server reach the network or read
            // files the operator did not name.
            .offline()
            // `format` asserts (an "email" that is not one is refused), as most validators
            // do and as a schema's author expects; unknown formats pass.
            .should_validate_formats(true)
            // ECMA-262 patterns need lookaround and backreferences, which only the
            // backtracking `fancy-regex` has. It hands every pattern without them to the
            // linear-time `regex` crate, so `(a+)+$` costs linear time; for the others a
            // backtrack limit bounds what one untrusted value can cost (a value that hits it
            // is refused, saying so). Compiled size is bounded so a pattern like
            // `\w{1000}{1000}` fails at load.
            .with_pattern_options(
                PatternOptions::fancy_regex()
                    .backtrack_limit(limits::MAX_REGEX_BACKTRACKS)
                    .size_limit(limits::MAX_REGEX_BYTES)
                    .dfa_size_limit(limits::MAX_REGEX_DFA_BYTES),
            )
            .build(&document)
            .map_err(|e| Invalid::Schema {
                pointer: limits::bound_pointer(e.instance_path().as_str()),
                reason: describe(&e),
            })?;
        Ok(Self {
            validator,
            text: text.to_owned(),
        })
    }

    /// The document as given.
    pub(super) fn text(&self) -> &str {
        &self.text
    }

    /// Checks a parsed value.
    pub(super) fn check(&self, value: &serde_json::Value, pattern: &str) -> Result<(), Violations> {
        // The fast path answers yes/no without building errors; only a refused value pays
        // for the list.
        if self.validator.is_valid(value) {
            return Ok(());
        }
        let mut listed = Vec::new();
        let mut more = 0usize;
        for error in self.validator.iter_errors(value) {
            if listed.len() < limits::MAX_LISTED_VIOLATIONS {
                listed.push(Violation {
                    path: limits::bound_pointer(error.instance_path().as_str()),
                    message: describe(&error),
                });
            } else {
                more += 1;
                if more >= limits::MAX_COUNTED_VIOLATIONS {
                    break;
                }
            }
        }
        if listed.is_empty() {
            // `is_valid` and `iter_errors` disagreeing would be a validator bug; refuse
            // rather than let the value through unexplained.
            listed.push(Violation {
                path: String::new(),
                message: "refused by the schema".to_owned(),
            });
        }
        Err(Violations::new(pattern, Format::JsonSchema, listed, more))
    }

    /// Checks raw bytes: UTF-8 JSON that the schema accepts.
    pub(super) fn validate(&self, value: &[u8], pattern: &str) -> Result<(), Violations> {
        let parsed = parse(value).map_err(|reason| {
            Violations::one(
                pattern,
                Format::JsonSchema,
                String::new(),
                format!("not JSON: {reason}"),
            )
        })?;
        self.check(&parsed, pattern)
    }

    /// Checks a JSON value and writes it compactly.
    pub(super) fn encode_json(
        &self,
        json: &serde_json::Value,
        pattern: &str,
    ) -> Result<Vec<u8>, Violations> {
        self.check(json, pattern)?;
        serde_json::to_vec(json).map_err(|e| {
            Violations::one(
                pattern,
                Format::JsonSchema,
                String::new(),
                limits::bound_message(&e.to_string()),
            )
        })
    }
}

/// The read side of a JSON Schema topic: the value parsed, without checking it against the
/// schema. Records predate schemas and come from any producer; a reader is better served by
/// the JSON it asked for than by a raw fallback, and checking is the write side's job.
pub(super) fn decode(
    value: &[u8],
    limits: &DecodeLimits,
) -> Result<serde_json::Value, DecodeError> {
    if value.len() > limits.max_bytes {
        return Err(DecodeError::TooLarge {
            size: value.len(),
            limit: limits.max_bytes,
        });
    }
    let parsed = parse(value).map_err(|reason| DecodeError::Json { reason })?;
    // Compact JSON of parsed JSON is at most 4.5 times the input (`1e15` is written
    // `1000000000000000.0`); measure only when that could pass the limit.
    if value.len().saturating_mul(5) > limits.max_json_bytes {
        let mut counter = CountingWriter::new(limits.max_json_bytes);
        if serde_json::to_writer(&mut counter, &parsed).is_err() && counter.overflowed() {
            return Err(DecodeError::JsonTooLarge {
                limit: limits.max_json_bytes,
            });
        }
    }
    Ok(parsed)
}

/// Parses UTF-8 JSON. serde_json refuses nesting deeper than 128, so a `[[[[…` value is an
/// error rather than a stack overflow.
fn parse(value: &[u8]) -> Result<serde_json::Value, String> {
    serde_json::from_slice(value).map_err(|e| limits::bound_message(&e.to_string()))
}

/// A validation error's message, quoting user data at most 64 characters at a time: the
/// value is shown as a short excerpt (the crate's "masked" form), and the kinds that quote
/// object keys are written here with each key cut.
fn describe(error: &ValidationError<'_>) -> String {
    let message = match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            format!(
                "Additional properties are not allowed ({})",
                key_list(unexpected)
            )
        }
        ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            format!(
                "Unevaluated properties are not allowed ({})",
                key_list(unexpected)
            )
        }
        ValidationErrorKind::PropertyNames { error } => {
            format!("property name {}", describe(error))
        }
        ValidationErrorKind::BacktrackLimitExceeded { .. } => format!(
            "{} could not be matched against the pattern within {} backtracking steps",
            limits::json_excerpt(error.instance()),
            limits::MAX_REGEX_BACKTRACKS
        ),
        _ => error
            .masked_with(limits::json_excerpt(error.instance()))
            .to_string(),
    };
    // Schema text (a `not` subschema, an `enum`'s options) can be long too.
    limits::truncate_chars(&message, limits::MAX_MESSAGE_CHARS)
}

/// `'a', 'b' were unexpected`, each key cut, at most 5 of them.
fn key_list(keys: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut list: Vec<String> = keys
        .iter()
        .take(SHOWN)
        .map(|k| format!("'{}'", limits::truncate_chars(k, limits::MAX_QUOTED_CHARS)))
        .collect();
    if keys.len() > SHOWN {
        list.push(format!("{} more", keys.len() - SHOWN));
    }
    let verb = if keys.len() == 1 { "was" } else { "were" };
    format!("{} {verb} unexpected", list.join(", "))
}
