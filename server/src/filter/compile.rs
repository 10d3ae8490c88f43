//! Parsing a filter and the checks that refuse it before any record is read:
//! length, syntax, nesting depth, names, and cost (in [`super::cost`]).

use std::sync::{Arc, LazyLock};

use cel::common::ast::{EntryExpr, Expr, IdedExpr, SourceInfo};
use cel::{Context, Env, ParseError};

use super::cost;
use super::{CompileError, Limits, Uses};

/// The deepest an expression may nest: the parser's limit on nested
/// parentheses, lists and calls, and the limit on the depth of the parsed
/// tree (operator chains such as `a + b + c` nest without parentheses).
///
/// The interpreter recurses once per level, and a filter is evaluated on the
/// caller's thread (a Tokio worker has a 2 MiB stack): an unoptimised build
/// takes about 40 KiB of stack per level, an optimised one about 1.5 KiB.
/// Real filters nest less than ten levels.
pub(super) const MAX_DEPTH: usize = 24;

/// The standard CEL environment, built once: its functions, types and macros.
pub(super) static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// The variables a filter sees.
pub(super) const VARIABLES: [&str; 7] = [
    "topic",
    "partition",
    "offset",
    "timestamp",
    "key",
    "headers",
    "value",
];

/// A parsed and checked filter expression.
pub(super) struct Compiled {
    pub(super) expr: IdedExpr,
    pub(super) uses: Uses,
}

/// Compiles `source`, running the parser on a thread of its own.
///
/// The parser and the checks recurse once per level of the parse tree, and
/// that tree is as deep as the longest chain of operators (`1+1+…+1` nests
/// 2,000 levels in 4 KiB), which needs more stack than the caller's thread
/// may have. The thread's stack is sized for the source's length; only the
/// pages it touches are committed. What comes out is at most [`MAX_DEPTH`]
/// deep, safe to evaluate and to drop on any thread; what is refused is
/// dropped on this one.
pub(super) fn compile(source: &str, limits: &Limits) -> Result<Compiled, CompileError> {
    if source.len() > limits.max_bytes {
        return Err(CompileError::TooLong {
            len: source.len(),
            max: limits.max_bytes,
        });
    }
    // An unoptimised parser takes about 1 KiB of stack per byte of a chain
    // like `1+1+…`; four times that covers sanitiser builds too.
    let stack = (8usize << 20).saturating_add(source.len().saturating_mul(4 << 10));
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("filter-compile".to_owned())
            .stack_size(stack.min(1 << 30))
            .spawn_scoped(scope, || compile_here(source, limits))
            .map_err(|error| CompileError::Unavailable(error.to_string()))?;
        handle
            .join()
            .map_err(|_| CompileError::Unavailable("the parser failed".to_owned()))?
    })
}

/// Compiles `source` on this thread: see [`compile`] for why not the caller's.
fn compile_here(source: &str, limits: &Limits) -> Result<Compiled, CompileError> {
    let parser = ENV
        .parser()
        .enable_optional_syntax(false)
        .max_recursion_depth(MAX_DEPTH as u16);
    let (expr, info) = parser
        .parse_with_source_info(source)
        .map_err(|errors| syntax_error(&errors.errors))?;
    let positions = Positions {
        source,
        info: &info,
    };
    let mut checker = Checker {
        positions: &positions,
        scope: Vec::new(),
        uses: Uses::default(),
    };
    checker.check(&expr, 1)?;
    if let Some(what) = not_a_condition(&expr) {
        return Err(CompileError::NotACondition { what });
    }
    let estimate = cost::estimate(&expr, limits);
    if estimate > limits.max_cost {
        return Err(CompileError::TooCostly {
            estimate,
            max: limits.max_cost,
        });
    }
    Ok(Compiled {
        expr,
        uses: checker.uses,
    })
}

/// The error to report of those the parser found: the first by position.
fn syntax_error(errors: &[ParseError]) -> CompileError {
    let position = |error: &ParseError| {
        let (line, column) = error.pos;
        (to_index(line), to_index(column))
    };
    // Past its recursion limit the parser reports the limit, then errors
    // about the half-built rules it abandoned: the limit is what to fix.
    if let Some(deep) = errors.iter().find(|e| e.msg.contains("Recursion limit")) {
        let (line, column) = position(deep);
        return CompileError::TooDeep {
            line,
            column,
            max: MAX_DEPTH,
        };
    }
    // "No `…Context`!" errors name the parser's internals, not the input.
    let Some(error) = errors
        .iter()
        .find(|e| !e.msg.starts_with("No `"))
        .or_else(|| errors.first())
    else {
        return CompileError::Syntax {
            line: 1,
            column: 1,
            message: "not an expression".to_owned(),
        };
    };
    let (line, column) = position(error);
    let message = error
        .msg
        .strip_prefix("Syntax error: ")
        .unwrap_or(&error.msg);
    CompileError::Syntax {
        line,
        column,
        message: message.to_owned(),
    }
}

/// A 1-based line or column from the parser's, which may be 0 when it has
/// none.
fn to_index(n: isize) -> usize {
    usize::try_from(n).unwrap_or(0).max(1)
}

/// Where the parsed expressions are in the source.
struct Positions<'a> {
    source: &'a str,
    info: &'a SourceInfo,
}

impl Positions<'_> {
    /// The 1-based line and column (in characters) where the expression
    /// `id` starts; 1:1 for one the parser gave no place.
    fn of(&self, id: u64) -> (usize, usize) {
        let Some((start, _)) = self.info.offset_for(id) else {
            return (1, 1);
        };
        // The parser's offsets are byte offsets.
        let start = (start as usize).min(self.source.len());
        let before = self.source.get(..start).unwrap_or(self.source);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }
}

/// Walks the tree: its depth, its names, its function names.
struct Checker<'a> {
    positions: &'a Positions<'a>,
    /// The names comprehensions bind around the current expression.
    scope: Vec<String>,
    uses: Uses,
}

impl Checker<'_> {
    fn check(&mut self, e: &IdedExpr, depth: usize) -> Result<(), CompileError> {
        if depth > MAX_DEPTH {
            let (line, column) = self.positions.of(e.id);
            return Err(CompileError::TooDeep {
                line,
                column,
                max: MAX_DEPTH,
            });
        }
        let next = depth + 1;
        match &e.expr {
            Expr::Unspecified => {
                let (line, column) = self.positions.of(e.id);
                Err(CompileError::Syntax {
                    line,
                    column,
                    message: "incomplete expression".to_owned(),
                })
            }
            Expr::Literal(_) => Ok(()),
            Expr::Ident(name) => self.name(name, e.id),
            Expr::Select(select) => {
                if self.is_type_name(&select.operand, &select.field) {
                    return Ok(());
                }
                self.check(&select.operand, next)
            }
            Expr::Call(call) => {
                if let Some(target) = &call.target {
                    // `ns.f(x)` calls the function `ns.f` when there is one.
                    if let Some(qualified) = self.qualified_function(target, &call.func_name) {
                        self.function(&qualified, e.id)?;
                    } else {
                        self.function(&call.func_name, e.id)?;
                        self.check(target, next)?;
                    }
                } else {
                    self.function(&call.func_name, e.id)?;
                }
                call.args.iter().try_for_each(|arg| self.check(arg, next))
            }
            Expr::List(list) => list.elements.iter().try_for_each(|el| self.check(el, next)),
            Expr::Map(map) => map.entries.iter().try_for_each(|entry| match &entry.expr {
                EntryExpr::MapEntry(entry) => {
                    self.check(&entry.key, next)?;
                    self.check(&entry.value, next)
                }
                // Only a message literal has fields, and a filter has no
                // message types.
                EntryExpr::StructField(field) => self.unknown(&field.field, entry.id),
            }),
            // `Foo{…}`: a message literal; a filter has no message types.
            Expr::Struct(message) => self.unknown(&message.type_name, e.id),
            Expr::Comprehension(c) => {
                self.check(&c.iter_range, next)?;
                self.check(&c.accu_init, next)?;
                let outer = self.scope.len();
                self.scope.push(c.accu_var.clone());
                self.scope.push(c.iter_var.clone());
                self.scope.extend(c.iter_var2.clone());
                let body = self
                    .check(&c.loop_cond, next)
                    .and_then(|()| self.check(&c.loop_step, next))
                    .and_then(|()| self.check(&c.result, next));
                self.scope.truncate(outer);
                body
            }
        }
    }

    /// Checks a name used as a value, and notes which variables are used.
    fn name(&mut self, name: &str, id: u64) -> Result<(), CompileError> {
        if self.scope.iter().any(|bound| bound == name) {
            return Ok(());
        }
        match name {
            "value" => self.uses.value = true,
            "headers" => self.uses.headers = true,
            "key" => self.uses.key = true,
            name if VARIABLES.contains(&name) => {}
            // `int`, `string`, `google.protobuf.Timestamp`…, as in
            // `type(x) == int`.
            name if ENV.types().find_type(name).is_some() => {}
            name => return self.unknown(name, id),
        }
        Ok(())
    }

    fn unknown(&self, name: &str, id: u64) -> Result<(), CompileError> {
        let (line, column) = self.positions.of(id);
        Err(CompileError::UnknownName {
            name: name.to_owned(),
            line,
            column,
        })
    }

    /// Whether `operand.field` spells the name of a type rather than a
    /// field of a variable.
    fn is_type_name(&self, operand: &IdedExpr, field: &str) -> bool {
        match self.qualified(operand) {
            Some(prefix) => ENV
                .types()
                .find_type(&format!("{prefix}.{field}"))
                .is_some(),
            None => false,
        }
    }

    /// The function `target.function` names when `target` is a qualified
    /// name (not a variable's fields) and such a function exists.
    fn qualified_function(&self, target: &IdedExpr, function: &str) -> Option<String> {
        let prefix = self.qualified(target)?;
        let name = format!("{prefix}.{function}");
        is_function(&name).then_some(name)
    }

    /// The dotted name `e` spells, when its first segment is not a variable.
    fn qualified(&self, e: &IdedExpr) -> Option<String> {
        match &e.expr {
            Expr::Ident(name) => {
                let bound = self.scope.contains(name);
                (!bound && !VARIABLES.contains(&name.as_str())).then(|| name.clone())
            }
            Expr::Select(select) if !select.test => Some(format!(
                "{}.{}",
                self.qualified(&select.operand)?,
                select.field
            )),
            _ => None,
        }
    }

    /// Checks that a called function exists. Operators (`_+_`, `@in`…) are
    /// not names a user writes and are always there.
    fn function(&self, name: &str, id: u64) -> Result<(), CompileError> {
        let written = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !written || is_function(name) {
            return Ok(());
        }
        let (line, column) = self.positions.of(id);
        Err(CompileError::UnknownFunction {
            name: name.to_owned(),
            line,
            column,
        })
    }
}

/// Whether the environment declares a function `name`, global or member.
fn is_function(name: &str) -> bool {
    // cel has no public lookup by name alone, but refuses to add a context
    // function under the name of a declared one, and says so.
    Context::with_env(Arc::clone(&ENV))
        .add_function(name, || false)
        .is_err()
}

/// What the expression gives when it is plainly not a condition, whatever
/// the record: a literal, or arithmetic.
fn not_a_condition(e: &IdedExpr) -> Option<&'static str> {
    use cel::common::ast::LiteralValue;
    match &e.expr {
        Expr::Literal(LiteralValue::Boolean(_)) => None,
        Expr::Literal(LiteralValue::Int(_)) => Some("an int"),
        Expr::Literal(LiteralValue::UInt(_)) => Some("a uint"),
        Expr::Literal(LiteralValue::Double(_)) => Some("a double"),
        Expr::Literal(LiteralValue::String(_)) => Some("a string"),
        Expr::Literal(LiteralValue::Bytes(_)) => Some("bytes"),
        Expr::Literal(LiteralValue::Null) => Some("null"),
        Expr::List(_) => Some("a list"),
        Expr::Map(_) => Some("a map"),
        Expr::Call(call)
            if call.target.is_none()
                && matches!(
                    call.func_name.as_str(),
                    "_+_" | "_-_" | "_*_" | "_/_" | "_%_" | "-_"
                ) =>
        {
            Some("the result of arithmetic")
        }
        _ => None,
    }
}
