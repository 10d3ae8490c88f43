//! The static cost estimate of a filter: the model is in the
//! [module documentation](super#cost).

use cel::common::ast::{CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue};

use super::Limits;

/// The most bytes a value may have and still count as small: an operation
/// on small values costs one unit however it works. It covers topic names
/// (at most 249 bytes) and the literals filters compare with.
const SMALL_BYTES: usize = 256;

/// The longest topic name Kafka allows.
const TOPIC_BYTES: usize = 249;

/// What the estimate knows of the size of an expression's value.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    /// A number, bool, null, timestamp, duration or type: a fixed size.
    Scalar,
    /// A string or bytes of at most this many bytes, at most [`SMALL_BYTES`].
    Small(usize),
    /// Anything that may be as large as a record's value.
    Large,
}

impl Shape {
    fn of_len(len: usize) -> Shape {
        if len <= SMALL_BYTES {
            Shape::Small(len)
        } else {
            Shape::Large
        }
    }

    fn is_large(self) -> bool {
        self == Shape::Large
    }

    /// The shape of a value that is one or the other.
    fn either(self, other: Shape) -> Shape {
        match (self, other) {
            (Shape::Large, _) | (_, Shape::Large) => Shape::Large,
            (Shape::Scalar, Shape::Scalar) => Shape::Scalar,
            (Shape::Small(a), Shape::Small(b)) => Shape::Small(a.max(b)),
            (Shape::Small(a), Shape::Scalar) | (Shape::Scalar, Shape::Small(a)) => {
                Shape::of_len(a.max(64))
            }
        }
    }
}

/// What a comprehension binds a name to.
#[derive(Clone, Copy)]
enum Binding {
    /// An element of the range, of this shape.
    Element(Shape),
    /// The accumulator, which only the macros' bookkeeping reads.
    Accumulator(Shape),
}

/// The names bound around an expression, innermost last.
#[derive(Default)]
struct Scope {
    bound: Vec<(String, Binding)>,
}

impl Scope {
    fn get(&self, name: &str) -> Option<Binding> {
        self.bound
            .iter()
            .rev()
            .find(|(bound, _)| bound == name)
            .map(|(_, binding)| *binding)
    }
}

/// The estimate of one expression.
struct Estimate {
    cost: u64,
    shape: Shape,
    /// The join of the elements' shapes, for a list (or the keys', for a
    /// map) literal; [`Shape::Large`] for anything else.
    elements: Shape,
    /// How many elements it has at most, when known: a list or map
    /// literal, and what `map` and `filter` make of one.
    count: Option<u64>,
    /// Whether it is a comprehension's bookkeeping: the accumulator, or an
    /// operation on it.
    bookkeeping: bool,
}

impl Estimate {
    fn of(cost: u64, shape: Shape) -> Self {
        Estimate {
            cost,
            shape,
            elements: Shape::Large,
            count: None,
            bookkeeping: false,
        }
    }
}

/// The estimated cost of evaluating `e` on a record whose value has at most
/// `limits.max_value_bytes` bytes, saturating at `u64::MAX`.
pub(super) fn estimate(e: &IdedExpr, limits: &Limits) -> u64 {
    let value_bytes = u64::try_from(limits.max_value_bytes).unwrap_or(u64::MAX);
    Estimator {
        value_bytes,
        max_elements: (value_bytes / 2).max(1),
        scope: Scope::default(),
    }
    .walk(e)
    .cost
}

struct Estimator {
    /// What an operation on a large value costs.
    value_bytes: u64,
    /// The most elements a list in a value can have: `[1,1,…]` takes two
    /// bytes an element.
    max_elements: u64,
    scope: Scope,
}

impl Estimator {
    fn walk(&mut self, e: &IdedExpr) -> Estimate {
        match &e.expr {
            Expr::Unspecified => Estimate::of(0, Shape::Large),
            Expr::Literal(literal) => Estimate::of(0, literal_shape(literal)),
            Expr::Ident(name) => match self.scope.get(name) {
                Some(Binding::Element(shape)) => Estimate::of(0, shape),
                Some(Binding::Accumulator(shape)) => Estimate {
                    bookkeeping: true,
                    ..Estimate::of(0, shape)
                },
                None => Estimate::of(0, variable_shape(name)),
            },
            Expr::Select(select) => {
                let operand = self.walk(&select.operand);
                let shape = if select.test {
                    Shape::Scalar
                } else {
                    Shape::Large
                };
                Estimate::of(operand.cost.saturating_add(1), shape)
            }
            Expr::List(list) => {
                let mut cost = 1u64;
                let mut elements = Shape::Scalar;
                for element in &list.elements {
                    let estimate = self.walk(element);
                    cost = cost
                        .saturating_add(estimate.cost)
                        .saturating_add(self.copy(element, &estimate));
                    elements = elements.either(estimate.shape);
                }
                Estimate {
                    elements,
                    count: Some(list.elements.len() as u64),
                    ..Estimate::of(cost, Shape::Large)
                }
            }
            Expr::Map(map) => {
                let mut cost = 1u64;
                let mut elements = Shape::Scalar;
                for entry in &map.entries {
                    // A map literal's entries are all keys and values.
                    let EntryExpr::MapEntry(entry) = &entry.expr else {
                        continue;
                    };
                    let (key, value) = (&entry.key, &entry.value);
                    let key_estimate = self.walk(key);
                    let value_estimate = self.walk(value);
                    cost = cost
                        .saturating_add(key_estimate.cost)
                        .saturating_add(self.copy(key, &key_estimate))
                        .saturating_add(value_estimate.cost)
                        .saturating_add(self.copy(value, &value_estimate));
                    elements = elements.either(key_estimate.shape);
                }
                Estimate {
                    elements,
                    count: Some(map.entries.len() as u64),
                    ..Estimate::of(cost, Shape::Large)
                }
            }
            Expr::Struct(message) => {
                let mut cost = 1u64;
                for entry in &message.entries {
                    if let EntryExpr::StructField(field) = &entry.expr {
                        cost = cost.saturating_add(self.walk(&field.value).cost);
                    }
                }
                Estimate::of(cost, Shape::Large)
            }
            Expr::Comprehension(c) => self.comprehension(c),
            Expr::Call(call) => self.call(call),
        }
    }

    /// What building a list or map with `e` as an element costs beyond
    /// evaluating `e`: copying it.
    fn copy(&self, e: &IdedExpr, estimate: &Estimate) -> u64 {
        if !estimate.shape.is_large() {
            return 0;
        }
        match &e.expr {
            // The elements of a range add up to one value, so copying each
            // in turn (`filter` does) costs a step an element.
            Expr::Ident(name) if matches!(self.scope.get(name), Some(Binding::Element(_))) => 1,
            _ => self.value_bytes,
        }
    }

    fn comprehension(&mut self, c: &ComprehensionExpr) -> Estimate {
        let range = self.walk(&c.iter_range);
        let init = self.walk(&c.accu_init);
        let iterations = range.count.unwrap_or(self.max_elements);
        let element = range.elements;
        let outer = self.scope.bound.len();
        self.scope
            .bound
            .push((c.accu_var.clone(), Binding::Accumulator(init.shape)));
        match &c.iter_var2 {
            // Two variables: index and element, or key and value.
            Some(second) => {
                self.scope
                    .bound
                    .push((c.iter_var.clone(), Binding::Element(Shape::Large)));
                self.scope
                    .bound
                    .push((second.clone(), Binding::Element(Shape::Large)));
            }
            None => self
                .scope
                .bound
                .push((c.iter_var.clone(), Binding::Element(element))),
        }
        let condition = self.walk(&c.loop_cond);
        let step = self.walk(&c.loop_step);
        let result = self.walk(&c.result);
        self.scope.bound.truncate(outer);
        // An iteration costs at least a step, whatever its body.
        let per_iteration = condition.cost.saturating_add(step.cost).max(1);
        let cost = range
            .cost
            .saturating_add(init.cost)
            .saturating_add(result.cost)
            .saturating_add(iterations.saturating_mul(per_iteration));
        Estimate {
            // `map` and `filter` make at most one element of each.
            count: range.count,
            ..Estimate::of(cost, result.shape)
        }
    }

    fn call(&mut self, call: &CallExpr) -> Estimate {
        let target = call.target.as_deref().map(|t| self.walk(t));
        let args: Vec<Estimate> = call.args.iter().map(|a| self.walk(a)).collect();
        let operands: Vec<&Estimate> = target.iter().chain(&args).collect();
        let shapes: Vec<Shape> = operands.iter().map(|o| o.shape).collect();
        let nested: u64 = operands
            .iter()
            .fold(0u64, |sum, o| sum.saturating_add(o.cost));
        let name = call.func_name.as_str();
        let shape = result_shape(name, &shapes);
        if operands.iter().any(|o| o.bookkeeping) {
            // The accumulator's tests and updates that the macros add: part
            // of the iteration's step.
            return Estimate {
                bookkeeping: true,
                ..Estimate::of(nested, shape)
            };
        }
        let extra = self.extra(call, &shapes, &args);
        Estimate::of(nested.saturating_add(1).saturating_add(extra), shape)
    }

    /// What a call costs beyond one step: nothing when its work is bounded
    /// by small operands, [`Estimator::value_bytes`] when it may grow with a
    /// large one.
    fn extra(&self, call: &CallExpr, shapes: &[Shape], args: &[Estimate]) -> u64 {
        let large = self.value_bytes;
        let bounded = |cheap: bool| if cheap { 0 } else { large };
        let small = |shape: &Shape| !shape.is_large();
        // The arguments, without a member call's target.
        let arg_shapes = &shapes[shapes.len() - args.len()..];
        match call.func_name.as_str() {
            "!_"
            | "-_"
            | "_&&_"
            | "_||_"
            | "_?_:_"
            | "_-_"
            | "_*_"
            | "_/_"
            | "_%_"
            | "@not_strictly_false"
            | "type"
            | "dyn" => 0,
            // A number on either side makes it arithmetic, not concatenation.
            "_+_" => bounded(shapes.contains(&Shape::Scalar) || shapes.iter().all(small)),
            // Comparing with a small value stops within its length.
            "_==_" | "_!=_" | "_<_" | "_<=_" | "_>_" | "_>=_" => bounded(shapes.iter().any(small)),
            // Looking a list or map up by a small index or key.
            "_[_]" => bounded(arg_shapes.last().is_some_and(small)),
            "@in" => self.membership(call, args),
            // A small prefix or suffix bounds the comparison; timestamp
            // accessors take at most a time zone name.
            "startsWith" | "endsWith" | "getFullYear" | "getMonth" | "getDate"
            | "getDayOfMonth" | "getDayOfWeek" | "getDayOfYear" | "getHours" | "getMinutes"
            | "getSeconds" | "getMilliseconds" => bounded(arg_shapes.iter().all(small)),
            // cel compiles the regular expression on every evaluation.
            "matches" => large,
            _ => bounded(shapes.iter().all(small)),
        }
    }

    /// The extra cost of `lhs in rhs`.
    fn membership(&self, call: &CallExpr, args: &[Estimate]) -> u64 {
        let (Some(lhs), Some(rhs), Some(rhs_expr)) = (args.first(), args.get(1), call.args.get(1))
        else {
            return self.value_bytes;
        };
        let lhs_small = !lhs.shape.is_large();
        match &rhs_expr.expr {
            // A key lookup in a map hashes the key.
            Expr::Ident(name) if name == "headers" && self.scope.get(name).is_none() => {
                if lhs_small { 0 } else { self.value_bytes }
            }
            Expr::Map(_) if lhs_small => 0,
            // One comparison an element, each bounded by a small side.
            Expr::List(list) if lhs_small || !rhs.elements.is_large() => list.elements.len() as u64,
            // A lookup in a map, or a comparison with each element of a list.
            _ if lhs_small => rhs.count.unwrap_or(self.max_elements),
            _ => self.value_bytes,
        }
    }
}

fn literal_shape(literal: &LiteralValue) -> Shape {
    match literal {
        LiteralValue::String(s) => Shape::of_len(s.inner().len()),
        LiteralValue::Bytes(b) => Shape::of_len(b.inner().len()),
        _ => Shape::Scalar,
    }
}

/// The shape of a free name: a record variable, or a type name.
fn variable_shape(name: &str) -> Shape {
    match name {
        "topic" => Shape::Small(TOPIC_BYTES),
        "key" | "headers" | "value" => Shape::Large,
        // partition, offset, timestamp, and type names such as `int`.
        _ => Shape::Scalar,
    }
}

/// The shape of what the function `name` gives on operands of `shapes`
/// (a member call's target first).
fn result_shape(name: &str, shapes: &[Shape]) -> Shape {
    match name {
        "_+_" => {
            if shapes.contains(&Shape::Scalar) {
                Shape::Scalar
            } else {
                shapes
                    .iter()
                    .try_fold(0usize, |sum, shape| match shape {
                        Shape::Small(len) => Some(sum + len),
                        _ => None,
                    })
                    .map_or(Shape::Large, Shape::of_len)
            }
        }
        "_?_:_" => match shapes {
            [_, yes, no] => yes.either(*no),
            _ => Shape::Large,
        },
        "dyn" => shapes.first().copied().unwrap_or(Shape::Large),
        "string" | "bytes" => match shapes {
            // The longest rendering of a number, timestamp or duration.
            [Shape::Scalar] => Shape::Small(64),
            [shape] => *shape,
            _ => Shape::Large,
        },
        "!_"
        | "-_"
        | "_&&_"
        | "_||_"
        | "_-_"
        | "_*_"
        | "_/_"
        | "_%_"
        | "_==_"
        | "_!=_"
        | "_<_"
        | "_<=_"
        | "_>_"
        | "_>=_"
        | "@in"
        | "@not_strictly_false"
        | "startsWith"
        | "endsWith"
        | "contains"
        | "matches"
        | "size"
        | "int"
        | "uint"
        | "double"
        | "bool"
        | "timestamp"
        | "duration"
        | "type"
        | "getFullYear"
        | "getMonth"
        | "getDate"
        | "getDayOfMonth"
        | "getDayOfWeek"
        | "getDayOfYear"
        | "getHours"
        | "getMinutes"
        | "getSeconds"
        | "getMilliseconds" => Shape::Scalar,
        _ => Shape::Large,
    }
}
