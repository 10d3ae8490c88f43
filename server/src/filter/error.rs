//! The errors of compiling a filter and of evaluating it on a record.

use std::fmt;

/// Why a filter was refused when its stream was opened.
///
/// Every variant is the user's to fix (gRPC `INVALID_ARGUMENT`), except
/// [`CompileError::Unavailable`], and its message, which starts with
/// `filter: `, says what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The source is longer than `--max-filter-bytes`.
    #[error(
        "filter: the filter is {len} bytes long, over the limit of {max} bytes; shorten it \
         (the limit is the server's --max-filter-bytes)"
    )]
    TooLong {
        /// The length of the source, in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The source is not a CEL expression.
    #[error("filter: syntax error at {line}:{column}: {message}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// What the parser expected or found.
        message: String,
    },
    /// The expression nests deeper than evaluating it on a thread's stack allows.
    #[error(
        "filter: syntax error at {line}:{column}: the expression nests more than {max} levels \
         deep; write it with fewer nested operations"
    )]
    TooDeep {
        /// 1-based line of the expression nested too deeply.
        line: usize,
        /// 1-based column of the expression nested too deeply.
        column: usize,
        /// The deepest nesting allowed.
        max: usize,
    },
    /// A name that is none of the variables a filter sees.
    #[error(
        "filter: unknown name \"{name}\" at {line}:{column}; a filter sees topic, partition, \
         offset, timestamp, key, headers and value"
    )]
    UnknownName {
        /// The name as written.
        name: String,
        /// 1-based line of the name.
        line: usize,
        /// 1-based column of the name.
        column: usize,
    },
    /// A call of a function CEL does not have.
    #[error("filter: unknown function \"{name}\" at {line}:{column}")]
    UnknownFunction {
        /// The function's name as written.
        name: String,
        /// 1-based line of the call.
        line: usize,
        /// 1-based column of the call.
        column: usize,
    },
    /// The expression cannot give a bool, whatever the record.
    #[error("filter: the expression gives {what}, not a bool; a filter must be a condition")]
    NotACondition {
        /// What it gives, e.g. "an int".
        what: &'static str,
    },
    /// The static cost estimate is over `--max-filter-cost`.
    #[error(
        "filter: the filter's estimated cost {estimate} is over the limit of {max}; simplify it \
         (fewer operations on whole values or inside all/exists/map/filter) or raise the \
         server's --max-filter-cost"
    )]
    TooCostly {
        /// The estimate (saturated at `u64::MAX`).
        estimate: u64,
        /// The limit.
        max: u64,
    },
    /// The server could not compile the filter now (it could not start the
    /// compiling thread, or the parser failed unexpectedly); not the user's fault.
    #[error("filter: the server could not compile the filter: {0}")]
    Unavailable(String),
}

/// Why a filter could not tell whether a record matches.
///
/// The stream counts these and treats the record as not matching.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// CEL failed: no such key, no matching overload, division by zero...
    #[error("filter: {}", Bounded(.0))]
    Runtime(Box<cel::ExecutionError>),
    /// The expression gave something other than a bool for this record.
    #[error("filter: the expression gave {0} for this record, not a bool")]
    NotBool(String),
    /// The record's value is larger than a filter may decode; see
    /// [`value_too_large`](super::value_too_large).
    #[error(
        "filter: the record value is {len} bytes, more than a filter looks into (the server's \
         --max-filter-value-bytes)"
    )]
    ValueTooLarge {
        /// The value's length, in bytes.
        len: usize,
    },
    /// The caller's value could not become a CEL value.
    #[error("filter: the record value cannot be filtered on: {0}")]
    Value(String),
    /// The interpreter panicked: a bug in it, contained to this record.
    #[error("filter: the interpreter failed on this record")]
    Internal,
}

impl From<cel::ExecutionError> for EvalError {
    fn from(error: cel::ExecutionError) -> Self {
        EvalError::Runtime(Box::new(error))
    }
}

/// Displays at most [`Bounded::MAX`] bytes of a value: CEL's runtime errors
/// quote whole operands, and an operand may be a record's whole value.
struct Bounded<'a, T>(&'a T);

impl<T> Bounded<'_, T> {
    const MAX: usize = 512;
}

impl<T: fmt::Display> fmt::Display for Bounded<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Truncating {
            text: String::new(),
            cut: false,
        };
        // `Truncating` never fails, so neither does this.
        let _ = fmt::write(&mut out, format_args!("{}", self.0));
        f.write_str(&out.text)?;
        if out.cut {
            f.write_str("…")?;
        }
        Ok(())
    }
}

/// Keeps the first [`Bounded::MAX`] bytes written to it. It drops the rest
/// rather than failing, as a failing writer would make `to_string` panic.
struct Truncating {
    text: String,
    cut: bool,
}

impl fmt::Write for Truncating {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = Bounded::<()>::MAX.saturating_sub(self.text.len());
        if s.len() <= room {
            self.text.push_str(s);
        } else {
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.text.push_str(&s[..end]);
            self.cut = true;
        }
        Ok(())
    }
}
