//! Record filters: a CEL expression a Subscribe or Consume stream carries to
//! receive only the records it matches.
//!
//! A filter is compiled once, when its stream opens ([`Filter::compile`]),
//! and evaluated for every record the stream reads ([`Filter::matches`]); a
//! record is sent only when the expression gives `true`. Filtering on the
//! server saves sending, and the client decoding, the records it would drop.
//!
//! # Variables
//!
//! | name | CEL type | |
//! |---|---|---|
//! | `topic` | `string` | |
//! | `partition` | `int` | |
//! | `offset` | `int` | |
//! | `timestamp` | `google.protobuf.Timestamp` | `null` when the record has none |
//! | `key` | `string`, or `bytes` | `bytes` when not UTF-8, `null` for a null key |
//! | `headers` | `map(string, string)` | a value is `bytes` when not UTF-8, `""` when absent; when a name repeats, the last header wins (Kafka's `lastHeader`) |
//! | `value` | depends | the record's value as the caller decoded it ([`FilterValue`]): a JSON object or array as maps and lists ([`value_from_json`]), a message ([`value_from_serialize`]), else `bytes` ([`value_from_bytes`]) |
//!
//! Besides these, an expression may use the names that `all`, `exists`,
//! `exists_one`, `map` and `filter` bind, and CEL's standard functions and
//! type names (`size`, `matches`, `int`, `timestamp`…). Any other name is
//! refused when compiling, with its position, rather than failing on every
//! record. So is a call of a function CEL does not have.
//!
//! The caller skips what the expression does not use: decoding the value
//! unless [`Filter::uses_value`], parsing headers unless
//! [`Filter::uses_headers`].
//!
//! # Limits
//!
//! A filter comes from a client and runs on every record of its stream, so
//! compiling refuses one that could take the server too much time or memory
//! ([`Limits`]):
//!
//! - a source longer than `max_bytes` (`--max-filter-bytes`);
//! - nesting deeper than 24 levels (parentheses, calls, lists, or operator
//!   chains such as `1 + 1 + …`): the interpreter recurses once per level, on
//!   the stream's thread;
//! - an estimated cost over `max_cost` (`--max-filter-cost`), below.
//!
//! A value over `max_value_bytes` (`--max-filter-value-bytes`) is not
//! decoded: the caller gives [`value_too_large`] for its record instead of
//! evaluating.
//!
//! # Cost
//!
//! The estimate bounds the work of one evaluation on a record whose value
//! has at most `B = max_value_bytes` bytes, in steps (one step is about one
//! operation of the interpreter):
//!
//! - a literal and a name cost nothing; a field selection (`a.f`, `has(a.f)`)
//!   costs 1 plus its operand;
//! - a call or operator costs 1 plus its operands, plus `B` when its work may
//!   grow with the size of a *large* operand. A value is *small* when it has
//!   a fixed size (a number, bool, null, timestamp, duration: `partition`,
//!   `offset`, `timestamp`, numeric literals, the result of arithmetic, of a
//!   comparison, of `size`, `int`, `timestamp`…), or is a string or bytes
//!   known to have at most 256 bytes (`topic`, a short literal, a
//!   concatenation of such); anything else (`key`, `headers`, `value` and
//!   their fields, a list or map) is *large*. No `B` is added for: `!`, `&&`,
//!   `||`, `?:`, `-`, `*`, `/`, `%`, `type`, `dyn`; `+` with a number on one
//!   side or small on both; a comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)
//!   with a small side; an index (`a[i]`) with a small index;
//!   `startsWith`/`endsWith` and the timestamp accessors with small
//!   arguments; `x in headers` and `x in {…}` with a small `x`, and
//!   `x in [e1, …, en]` (which adds `n` instead) when `x` or every `ei` is
//!   small; any other call whose operands are all small. `x in y` with a
//!   small `x` and any other `y` adds `B / 2` instead (a comparison with
//!   each element of a list, see `N` below). `matches` always adds `B` (cel
//!   compiles the regular expression on every evaluation);
//! - a list or map literal costs 1 plus its elements, plus `B` for each large
//!   element it copies (1 for an element of an enclosing comprehension's
//!   range, as those add up to one value);
//! - a comprehension (`all`, `exists`, `exists_one`, `map`, `filter`) costs
//!   its range, plus `N` times the cost of one iteration, at least 1: `N` is
//!   the number of elements of a list or map literal range (or of a `map` or
//!   `filter` of one), else `B / 2`, the most elements a JSON list of `B`
//!   bytes has (`[1,1,…]`). The accumulator's tests and updates that the
//!   macros add cost nothing (they are that "at least 1").
//!
//! Costs add up, saturating. So, under the default limits (`B` = 1 MiB,
//! `max_cost` = 1,000,000): `value.duration > 100` costs 2,
//! `headers.region == 'eu' && value.amount > 1000` 5, `key.startsWith('P')` 1,
//! `value.tags.exists(t, t == 'vip')` 524,289; while
//! `value.items.all(x, value.items.all(y, x == y))` (`N·N·B`) and
//! `value.items.map(x, value.big + value.big)` (`N·2B`) are refused, and so is
//! any operation whose work grows with a whole value (`value.s.contains('x')`,
//! `size(value.items)`, `value.a == value.b`), as one such costs `B`, more
//! than the default `max_cost`. The model over-estimates: an operation on a
//! small value may touch 256 bytes, and a step on a large one is counted as
//! `B`, which makes it safe to count everything else as one step.

mod compile;
mod cost;
mod error;
mod record;
mod value;

#[cfg(test)]
mod tests;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use cel::common::ast::IdedExpr;
use cel::common::types::CelBool;
use cel::{Context, Value};

pub use error::{CompileError, EvalError};
pub use record::RecordView;
pub use value::{value_from_bytes, value_from_json, value_from_serialize, value_too_large};

/// The limits a filter is compiled under (the server's flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest source accepted, in bytes (`--max-filter-bytes`).
    pub max_bytes: usize,
    /// The highest estimated cost accepted (`--max-filter-cost`); see the
    /// [module documentation](self#cost).
    pub max_cost: u64,
    /// The largest record value decoded for a filter
    /// (`--max-filter-value-bytes`); the cost estimate assumes values of at
    /// most this size.
    pub max_value_bytes: usize,
}

impl Limits {
    /// The defaults: 4 KiB of source, a cost of 1,000,000, values of 1 MiB.
    pub const DEFAULT: Self = Limits {
        max_bytes: 4096,
        max_cost: 1_000_000,
        max_value_bytes: 1 << 20,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// The variables an expression uses, so that a record's are built only then.
#[derive(Debug, Clone, Copy, Default)]
struct Uses {
    value: bool,
    headers: bool,
    key: bool,
}

/// The record's value as the caller hands it to [`Filter::matches`].
#[derive(Debug, Clone)]
pub enum FilterValue {
    /// Not decoded, because the filter does not use it, or a null value:
    /// `value` is `null`.
    Absent,
    /// The decoded value.
    Value(Value),
}

/// A compiled filter.
///
/// It holds the parsed expression and a root interpreter context made once;
/// evaluating builds only the record's variables, borrowing the record.
pub struct Filter {
    source: String,
    expr: IdedExpr,
    /// The root scope: the standard environment. Each evaluation opens a
    /// child scope holding the record.
    root: Context<'static, 'static>,
    uses: Uses,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Filter {
    /// Compiles `source`, or says what to fix; see the
    /// [module documentation](self) for what is refused.
    pub fn compile(source: &str, limits: &Limits) -> Result<Filter, CompileError> {
        let compiled = compile::compile(source, limits)?;
        Ok(Filter {
            source: source.to_owned(),
            expr: compiled.expr,
            root: Context::with_env(Arc::clone(&compile::ENV)),
            uses: compiled.uses,
        })
    }

    /// The expression as the client wrote it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the expression reads `value`; when not, the caller need not
    /// decode values and passes [`FilterValue::Absent`].
    pub fn uses_value(&self) -> bool {
        self.uses.value
    }

    /// Whether the expression reads `headers`; when not, the caller need not
    /// collect them and may pass none.
    pub fn uses_headers(&self) -> bool {
        self.uses.headers
    }

    /// Whether `record`, whose value is `value`, matches.
    ///
    /// An error (a missing key, no matching overload, a result that is not a
    /// bool…) is the record's alone: the caller counts it and treats the
    /// record as not matching.
    pub fn matches(&self, record: &RecordView<'_>, value: FilterValue) -> Result<bool, EvalError> {
        let value = match value {
            FilterValue::Value(value) if self.uses.value => Some(value::into_val(value)?),
            _ => None,
        };
        let activation = record::Activation::new(record, value, self.uses);
        // cel is a third-party interpreter fed client expressions and record
        // data; should it panic on some pair, that record fails, not the
        // stream.
        catch_unwind(AssertUnwindSafe(|| self.evaluate(&activation)))
            .unwrap_or(Err(EvalError::Internal))
    }

    fn evaluate(&self, activation: &record::Activation<'_>) -> Result<bool, EvalError> {
        let mut scope = self.root.new_inner_scope();
        scope.set_variable_resolver(activation);
        let result = Value::resolve_val(&self.expr, &scope)?;
        match result.downcast_ref::<CelBool>() {
            Some(matched) => Ok(*matched.inner()),
            None => Err(EvalError::NotBool(result.get_type().name().to_owned())),
        }
    }
}

// The stream holds its filter in an `Arc` and evaluates it on any worker.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Filter>();
};

/// Compiles any UTF-8 `data` under the default limits, for the fuzz target of
/// the filter compiler; the result is ignored, only a crash or a hang counts.
#[cfg(test)]
pub fn fuzz_compile(data: &[u8]) {
    if let Ok(source) = std::str::from_utf8(data) {
        let _ = Filter::compile(source, &Limits::DEFAULT);
    }
}
