//! Behaviour of filters: the variables, the errors, the cost model, and
//! robustness on arbitrary input.

use super::*;
use proptest::prelude::*;

const PAGE_EVENT: &[u8] =
    br#"{"name":"P1","user":"U2","date":"2026-12-08T00:00:00.000+00:00","duration":4521}"#;

/// 2026-06-01T00:00:00Z.
const JUNE_2026_MS: i64 = 1_780_272_000_000;

fn record() -> RecordView<'static> {
    RecordView {
        topic: "orders",
        partition: 3,
        offset: 1234,
        timestamp_ms: Some(JUNE_2026_MS),
        key: Some(b"P1"),
        headers: vec![
            ("region", Some(b"us".as_slice())),
            ("flag", None),
            ("bin", Some(b"\xff\x00".as_slice())),
            ("region", Some(b"eu".as_slice())),
        ],
    }
}

fn compile(source: &str) -> Filter {
    Filter::compile(source, &Limits::DEFAULT)
        .unwrap_or_else(|error| panic!("`{source}` should compile: {error}"))
}

fn compile_error(source: &str) -> String {
    match Filter::compile(source, &Limits::DEFAULT) {
        Ok(_) => panic!("`{source}` should not compile"),
        Err(error) => error.to_string(),
    }
}

fn json(bytes: &[u8]) -> FilterValue {
    FilterValue::Value(value_from_json(bytes).expect("JSON"))
}

/// Whether `source` matches `record()` with the JSON `value`.
fn eval_on(source: &str, record: &RecordView<'_>, value: &[u8]) -> Result<bool, EvalError> {
    compile(source).matches(record, json(value))
}

fn eval(source: &str) -> bool {
    eval_on(source, &record(), PAGE_EVENT)
        .unwrap_or_else(|error| panic!("`{source}` should evaluate: {error}"))
}

#[test]
fn topic_partition_offset() {
    assert!(eval("topic == 'orders'"));
    assert!(!eval("topic == 'payments'"));
    assert!(eval(
        "topic.startsWith('ord') && topic in ['orders', 'payments']"
    ));
    assert!(eval("partition == 3 && partition > 2 && partition < 4"));
    assert!(eval("offset == 1234 && offset >= 1000 && offset % 2 == 0"));
}

#[test]
fn timestamp_compares_with_timestamps() {
    assert!(eval("timestamp > timestamp('2026-01-01T00:00:00Z')"));
    assert!(!eval("timestamp < timestamp('2026-01-01T00:00:00Z')"));
    assert!(eval("timestamp == timestamp('2026-06-01T00:00:00Z')"));
    assert!(eval(
        "timestamp - duration('24h') < timestamp('2026-06-01T00:00:00Z')"
    ));
    assert!(eval(
        "timestamp.getFullYear() == 2026 && timestamp.getMonth() == 5"
    ));

    let mut untimed = record();
    untimed.timestamp_ms = None;
    assert!(eval_on("timestamp == null", &untimed, PAGE_EVENT).expect("evaluates"));
    assert!(
        eval_on(
            "timestamp > timestamp('2026-01-01T00:00:00Z')",
            &untimed,
            PAGE_EVENT
        )
        .is_err()
    );
}

#[test]
fn key_is_a_string_bytes_or_null() {
    assert!(eval("key == 'P1'"));
    assert!(eval("key.startsWith('P')"));
    assert!(eval("type(key) == string"));

    let mut binary = record();
    binary.key = Some(b"\xff\x00");
    assert!(eval_on("key == b'\\xff\\x00'", &binary, PAGE_EVENT).expect("evaluates"));
    assert!(eval_on("type(key) == bytes", &binary, PAGE_EVENT).expect("evaluates"));

    let mut keyless = record();
    keyless.key = None;
    assert!(eval_on("key == null", &keyless, PAGE_EVENT).expect("evaluates"));
}

#[test]
fn headers_last_wins_and_missing() {
    assert!(eval("headers.region == 'eu'"));
    assert!(eval("headers['region'] == 'eu'"));
    assert!(eval("'region' in headers"));
    assert!(eval("headers.flag == ''"));
    assert!(eval("headers.bin == b'\\xff\\x00'"));
    assert!(!eval("'tenant' in headers"));
    assert!(eval("!has(headers.tenant)"));
    // A missing header read directly is an error, not a mismatch.
    assert!(matches!(
        eval_on("headers.tenant == 'x'", &record(), PAGE_EVENT),
        Err(EvalError::Runtime(_))
    ));

    let mut bare = record();
    bare.headers.clear();
    assert!(!eval_on("'region' in headers", &bare, PAGE_EVENT).expect("evaluates"));
}

#[test]
fn value_from_json_documents() {
    assert!(eval("value.duration > 100"));
    assert!(eval("value.name == 'P1' && value.user == 'U2'"));

    let nested = br#"{"user":{"address":{"city":"Paris"}},"tags":["new","vip"],
        "big":9223372036854775808,"neg":-5,"f":1.5,"nothing":null,"ok":true}"#;
    let check = |source: &str| {
        assert!(
            eval_on(source, &record(), nested).expect("evaluates"),
            "`{source}` should match"
        )
    };
    check("value.user.address.city == 'Paris'");
    check("value.tags[1] == 'vip'");
    check("value.tags.exists(t, t == 'vip')");
    check("value.big == 9223372036854775808u");
    check("value.neg == -5");
    check("value.f == 1.5");
    check("value.nothing == null");
    check("value.ok");
    check("has(value.user.address) && !has(value.user.phone)");

    assert!(eval_on("value[1] == 2", &record(), b" [1, 2]").expect("evaluates"));
}

#[test]
fn value_from_json_takes_only_documents() {
    assert!(value_from_json(b"{}").is_some());
    assert!(value_from_json(b"\n\t [] ").is_some());
    for not_a_document in [
        &b""[..],
        b"   ",
        b"123",
        b"\"text\"",
        b"null",
        b"{",
        b"{} x",
        b"[1,]",
        b"\xff{}",
    ] {
        assert!(
            value_from_json(not_a_document).is_none(),
            "{not_a_document:?}"
        );
    }
    // Deeper than serde_json's recursion limit.
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    assert!(value_from_json(deep.as_bytes()).is_none());
    // A repeated key: the last wins.
    let filter = compile("value.a == 2");
    let value = value_from_json(br#"{"a":1,"a":2}"#).expect("JSON");
    assert!(
        filter
            .matches(&record(), FilterValue::Value(value))
            .expect("evaluates")
    );
}

#[test]
fn value_as_bytes_and_absent() {
    let filter = compile("value == b'\\x00\\x01abc'");
    let value = FilterValue::Value(value_from_bytes(b"\x00\x01abc"));
    assert!(filter.matches(&record(), value).expect("evaluates"));

    let filter = compile("value == null");
    assert!(
        filter
            .matches(&record(), FilterValue::Absent)
            .expect("evaluates")
    );
    let null = FilterValue::Value(value_from_json(b"[null]").expect("JSON"));
    assert!(!filter.matches(&record(), null).expect("evaluates"));
}

#[test]
fn value_from_serialize_structs() {
    #[derive(serde::Serialize)]
    struct Order {
        id: u64,
        amount: i64,
        items: Vec<String>,
    }
    let value = value_from_serialize(&Order {
        id: 7,
        amount: 1500,
        items: vec!["a".into(), "b".into()],
    })
    .expect("serialises");
    let filter =
        compile("value.amount > 1000 && value.id == 7u && value.items.exists(i, i == 'b')");
    assert!(
        filter
            .matches(&record(), FilterValue::Value(value))
            .expect("evaluates")
    );
}

#[test]
fn uses_value_and_headers() {
    let filter = compile("topic == 'orders'");
    assert!(!filter.uses_value() && !filter.uses_headers());
    assert_eq!(filter.source(), "topic == 'orders'");
    let filter = compile("value.x == 1 || headers.a == 'b'");
    assert!(filter.uses_value() && filter.uses_headers());
    // A comprehension's own `value` is not the record's.
    let filter = compile("[1, 2].exists(value, value == 2)");
    assert!(!filter.uses_value());
    // Not decoding the value when the filter does not use it.
    assert!(
        filter
            .matches(&record(), FilterValue::Absent)
            .expect("evaluates")
    );
    // Nor collecting headers.
    let filter = compile("key == 'P1'");
    let mut headerless = record();
    headerless.headers.clear();
    assert!(
        filter
            .matches(&headerless, FilterValue::Absent)
            .expect("evaluates")
    );
}

#[test]
fn syntax_errors_say_where() {
    assert_eq!(
        compile_error("value.duration >"),
        "filter: syntax error at 1:17: mismatched input '<EOF>' expecting {'[', '{', '(', '.', \
         '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, \
         IDENTIFIER}"
    );
    let message = compile_error("topic == 'a' &&\n  ) partition");
    assert!(
        message.starts_with("filter: syntax error at 2:3: "),
        "{message}"
    );
    assert!(compile_error("").starts_with("filter: syntax error at 1:1: "));
    assert!(compile_error("'é' + ü").starts_with("filter: syntax error at 1:7: "));
}

#[test]
fn nesting_is_limited() {
    let parens = format!("{}true{}", "(".repeat(100), ")".repeat(100));
    let message = compile_error(&parens);
    assert!(
        message.starts_with("filter: syntax error at 1:") && message.contains("24 levels"),
        "{message}"
    );
    let lists = format!("{}1{} == []", "[".repeat(30), "]".repeat(30));
    assert!(compile_error(&lists).contains("24 levels"));
    // Chains nest without parentheses.
    let chain = format!("{}1 == 1", "1 + ".repeat(1000));
    assert!(chain.len() <= 4096);
    assert!(compile_error(&chain).contains("24 levels"));
    let selects = format!("value{} == 1", ".a".repeat(2000));
    assert!(compile_error(&selects).contains("24 levels"));
    // What is accepted evaluates, even on an unoptimised build's stack.
    let deep = format!("{}1{} == -1", "-(".repeat(21), ")".repeat(21));
    assert!(eval(&deep));
}

#[test]
fn unknown_names_say_where() {
    assert_eq!(
        compile_error("vaule.duration > 1"),
        "filter: unknown name \"vaule\" at 1:1; a filter sees topic, partition, offset, \
         timestamp, key, headers and value"
    );
    assert!(
        compile_error("topic == 'a' &&\n  vaule > 1").contains("\"vaule\" at 2:3;"),
        "line 2"
    );
    assert!(compile_error("'é€' == x").contains("\"x\" at 1:9;"));
    assert!(compile_error("value.items.exists(i, j > 1)").contains("\"j\" at 1:23;"));
    // The comprehension's name is not visible outside it.
    assert!(compile_error("value.items.exists(i, i > 1) && i == 2").contains("\"i\""));
    assert!(compile_error("Order{id: 1} == value").contains("unknown name \"Order\""));
    // Type names are known.
    assert!(eval("type(value.duration) == int && type(value) == map"));
    assert!(
        compile_error("value.name.startWith('P')")
            .starts_with("filter: unknown function \"startWith\" at 1:")
    );
    assert!(compile_error("frobnicate(value)").contains("unknown function \"frobnicate\""));
}

#[test]
fn standard_functions_are_known() {
    let limits = Limits {
        max_cost: u64::MAX,
        ..Limits::DEFAULT
    };
    for source in [
        "size(value.name) == 2 && value.name.size() == 2 && size(value) == 4",
        "value.name.contains('1') && value.name.endsWith('1') && value.name.matches('^P')",
        "int(value.duration) == 4521 && uint(value.duration) == 4521u",
        "double(value.duration) == 4521.0 && string(value.duration) == '4521'",
        "bytes(value.name) == b'P1' && bool('true') && dyn(value.duration) == 4521",
        "timestamp(value.date).getFullYear() == 2026 && duration('1h') > duration('1m')",
        "timestamp(value.date).getHours('Europe/Paris') == 1",
        "type(value.duration) == int && type(value.name) == string",
        "value.map(k, k).exists_one(k, k == 'name') && value.filter(k, k == 'user').size() == 1",
        "[1, 2].existsOne(x, x == 1) && [1, 2].all(x, x > 0) && has(value.name)",
        "type(timestamp) == google.protobuf.Timestamp",
    ] {
        let filter = Filter::compile(source, &limits)
            .unwrap_or_else(|error| panic!("`{source}` should compile: {error}"));
        assert!(
            filter
                .matches(&record(), json(PAGE_EVENT))
                .expect("evaluates"),
            "`{source}` should match"
        );
    }
}

#[test]
fn too_long() {
    let source = format!("topic == '{}'", "a".repeat(5000));
    let message = compile_error(&source);
    assert!(
        message.contains("5011 bytes")
            && message.contains("4096")
            && message.contains("--max-filter-bytes"),
        "{message}"
    );
}

#[test]
fn not_a_condition() {
    assert!(compile_error("1 + 2").contains("not a bool"));
    assert!(compile_error("'text'").contains("gives a string"));
    // Only known when evaluating.
    assert!(matches!(
        eval_on("value.duration", &record(), PAGE_EVENT),
        Err(EvalError::NotBool(_))
    ));
}

#[test]
fn cost_accepts_the_usual() {
    for source in [
        "value.duration > 100",
        "headers.region == 'eu' && value.amount > 1000",
        "key.startsWith('P')",
        "value.tags.exists(t, t == 'vip')",
    ] {
        compile(source);
    }
    // As `exists`: one comparison an element.
    assert!(
        eval_on("'vip' in value.tags", &record(), br#"{"tags":["a","vip"]}"#).expect("evaluates")
    );
}

#[test]
fn cost_refuses_quadratic_and_large_work() {
    for source in [
        "value.items.all(x, value.items.all(y, x == y))",
        "value.items.map(x, value.big + value.big).size() > 0",
        "value.a == value.b",
        "value.s.contains('x')",
        "value.tags.exists(t, t.name == 'vip' || t.name == 'gold')",
    ] {
        let message = compile_error(source);
        assert!(
            message.starts_with("filter: the filter's estimated cost ")
                && message.contains("over the limit of 1000000")
                && message.contains("--max-filter-cost"),
            "`{source}`: {message}"
        );
    }
    // Accepted under a higher limit.
    let limits = Limits {
        max_cost: 100_000_000,
        ..Limits::DEFAULT
    };
    let filter = Filter::compile("value.name.contains('1')", &limits).expect("compiles");
    assert!(
        filter
            .matches(&record(), json(PAGE_EVENT))
            .expect("evaluates")
    );
}

#[test]
fn cost_of_literal_ranges_counts_their_elements() {
    compile("['a', 'b', 'c'].exists(p, key.startsWith(p))");
    compile("[1, 2, 3].map(x, x * 2).exists(y, y == partition * 2)");
}

#[test]
fn runtime_errors() {
    let missing = eval_on("value.nope == 1", &record(), PAGE_EVENT);
    let Err(EvalError::Runtime(error)) = missing else {
        panic!("{missing:?}");
    };
    assert!(error.to_string().contains("nope"));
    assert!(matches!(
        eval_on(
            "value.duration / (partition - 3) == 1",
            &record(),
            PAGE_EVENT
        ),
        Err(EvalError::Runtime(_))
    ));
    assert!(matches!(
        eval_on("value.name > 3", &record(), PAGE_EVENT),
        Err(EvalError::Runtime(_))
    ));
    let message = eval_on("value.nope == 1", &record(), PAGE_EVENT)
        .expect_err("no such key")
        .to_string();
    assert!(message.starts_with("filter: "), "{message}");
    assert!(
        value_too_large(2 << 20)
            .to_string()
            .contains("2097152 bytes")
    );
}

#[test]
fn runtime_error_messages_are_bounded() {
    let limits = Limits {
        max_cost: u64::MAX,
        ..Limits::DEFAULT
    };
    let filter = Filter::compile("value.a + value.b == value.a", &limits).expect("compiles");
    let big = format!(r#"{{"a":"{}","b":1}}"#, "x".repeat(10_000));
    let error = filter
        .matches(&record(), json(big.as_bytes()))
        .expect_err("no `string + int`");
    assert!(error.to_string().len() < 600, "{error}");
}

#[test]
fn fuzz_compile_takes_anything() {
    fuzz_compile(b"\xff\xfe");
    fuzz_compile(b"value.a > 1");
    fuzz_compile(&[b'('; 4096]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn compile_never_panics(source in cel_like()) {
        if let Ok(filter) = Filter::compile(&source, &Limits::DEFAULT) {
            let _ = filter.matches(&record(), json(PAGE_EVENT));
        }
    }

    #[test]
    fn compile_never_panics_on_any_text(source in "\\PC{0,300}") {
        let _ = Filter::compile(&source, &Limits::DEFAULT);
    }

    #[test]
    fn matches_never_panics(value in json_like()) {
        let bytes = serde_json::to_vec(&value).expect("serialises");
        let value = value_from_json(&bytes);
        for filter in filters() {
            let value = value.clone().map_or(FilterValue::Absent, FilterValue::Value);
            let _ = filter.matches(&record(), value);
        }
    }

    #[test]
    fn value_from_json_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = value_from_json(&bytes);
    }
}

proptest! {
    // A long input takes tens of milliseconds to parse in a test build.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn compile_never_panics_on_deep_nesting(open in "[(\\[!-]{1,2000}", close in "[)\\]]{0,2000}") {
        let source = format!("{open}1{close}");
        if source.len() <= 4096 {
            let _ = Filter::compile(&source, &Limits::DEFAULT);
        }
    }

    #[test]
    fn compile_never_panics_on_long_input(tokens in proptest::collection::vec(cel_like(), 1..40)) {
        let mut source = tokens.concat();
        let mut end = source.len().min(Limits::DEFAULT.max_bytes);
        while !source.is_char_boundary(end) {
            end -= 1;
        }
        source.truncate(end);
        let _ = Filter::compile(&source, &Limits::DEFAULT);
    }
}

/// Filters touching values in many ways, compiled once.
fn filters() -> &'static [Filter] {
    static FILTERS: std::sync::LazyLock<Vec<Filter>> = std::sync::LazyLock::new(|| {
        let limits = Limits {
            max_cost: u64::MAX,
            ..Limits::DEFAULT
        };
        [
            "value.duration > 100",
            "value == null",
            "value.a.b.c == 'x'",
            "value[0] == 1",
            "size(value) > 2",
            "value.exists(k, k == 'a')",
            "value.all(k, type(k) == string)",
            "value.map(k, k).size() >= 0",
            "value.filter(k, k != null).size() >= 0",
            "'a' in value",
            "value == value",
            "string(value) == 'x'",
            "value.a + value.b == value.c",
            "value.a < value.b",
            "int(value.a) > 0",
            "value.tags.exists(t, t.matches('^v'))",
            "timestamp(value.date) > timestamp",
        ]
        .iter()
        .map(|source| Filter::compile(source, &limits).expect(source))
        .collect()
    });
    &FILTERS
}

/// Strings made of CEL's tokens, mostly nonsense, sometimes valid.
fn cel_like() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("value".to_owned()),
        Just("headers".to_owned()),
        Just("key".to_owned()),
        Just("topic".to_owned()),
        Just("timestamp".to_owned()),
        Just("x".to_owned()),
        Just(".".to_owned()),
        Just(".a".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just("?".to_owned()),
        Just(" == ".to_owned()),
        Just(" + ".to_owned()),
        Just(" - ".to_owned()),
        Just(" * ".to_owned()),
        Just(" / ".to_owned()),
        Just(" % ".to_owned()),
        Just(" < ".to_owned()),
        Just(" && ".to_owned()),
        Just(" || ".to_owned()),
        Just(" in ".to_owned()),
        Just("!".to_owned()),
        Just("1".to_owned()),
        Just("0".to_owned()),
        Just("2u".to_owned()),
        Just("1.5".to_owned()),
        Just("'s'".to_owned()),
        Just("b'\\xff'".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just(".exists(x, ".to_owned()),
        Just(".all(x, ".to_owned()),
        Just(".map(x, ".to_owned()),
        Just(".filter(x, ".to_owned()),
        Just(".exists_one(x, ".to_owned()),
        Just("has(".to_owned()),
        Just("size(".to_owned()),
        Just("int(".to_owned()),
        Just("string(".to_owned()),
        Just("timestamp(".to_owned()),
        Just("duration(".to_owned()),
        Just(".startsWith(".to_owned()),
        Just(".matches(".to_owned()),
        Just("type(".to_owned()),
        Just("dyn(".to_owned()),
        Just("\n".to_owned()),
        "[a-z_]{1,8}".prop_map(|s| s),
        any::<char>().prop_map(|c| c.to_string()),
    ];
    proptest::collection::vec(token, 0..60).prop_map(|tokens| tokens.concat())
}

/// JSON documents of any shape.
fn json_like() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("2026-12-08T00:00:00.000+00:00")),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map("[a-d]|duration|tags|date|\\PC{0,6}", inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Times the hot path; run with
/// `cargo test --release -- --ignored --nocapture timing`.
#[test]
#[ignore = "a measurement, not a check"]
fn timing() {
    use std::hint::black_box;
    use std::time::Instant;

    /// The fastest and the median of 20 batches: the fastest is the least
    /// disturbed by whatever else the machine runs.
    fn per_record(label: &str, rounds: u32, mut f: impl FnMut()) {
        let batch = (rounds / 20).max(1);
        let mut times: Vec<u128> = (0..21)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..batch {
                    f();
                }
                start.elapsed().as_nanos() / u128::from(batch)
            })
            .skip(1)
            .collect();
        times.sort_unstable();
        println!(
            "{label}: {} ns/record (median {})",
            times[0],
            times[times.len() / 2]
        );
    }

    /// The alternative: through `serde_json::Value`.
    fn via_serde_json_value(bytes: &[u8]) -> Option<cel::Value> {
        fn convert(value: serde_json::Value) -> cel::Value {
            use std::sync::Arc;
            match value {
                serde_json::Value::Null => cel::Value::Null,
                serde_json::Value::Bool(b) => cel::Value::Bool(b),
                serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                    (Some(i), _) => cel::Value::Int(i),
                    (None, Some(u)) => cel::Value::UInt(u),
                    _ => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
                },
                serde_json::Value::String(s) => cel::Value::String(Arc::new(s)),
                serde_json::Value::Array(items) => {
                    cel::Value::List(Arc::new(items.into_iter().map(convert).collect()))
                }
                serde_json::Value::Object(entries) => cel::Value::Map(cel::objects::Map {
                    map: Arc::new(
                        entries
                            .into_iter()
                            .map(|(k, v)| (cel::objects::Key::String(Arc::new(k)), convert(v)))
                            .collect(),
                    ),
                }),
            }
        }
        let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        matches!(
            value,
            serde_json::Value::Object(_) | serde_json::Value::Array(_)
        )
        .then(|| convert(value))
    }

    const ROUNDS: u32 = 1_000_000;
    // Warms the allocator and the caches up for whichever comes first.
    for _ in 0..ROUNDS / 4 {
        black_box(value_from_json(black_box(PAGE_EVENT)));
        black_box(via_serde_json_value(black_box(PAGE_EVENT)));
    }
    per_record("value_from_json (DeserializeSeed)", ROUNDS, || {
        black_box(value_from_json(black_box(PAGE_EVENT)));
    });
    per_record("serde_json::Value, then cel::Value", ROUNDS, || {
        black_box(via_serde_json_value(black_box(PAGE_EVENT)));
    });
    let filter = compile("value.duration > 100");
    let record = record();
    per_record("matches `value.duration > 100` from JSON", ROUNDS, || {
        let value = value_from_json(black_box(PAGE_EVENT)).expect("JSON");
        assert!(
            filter
                .matches(&record, FilterValue::Value(value))
                .expect("evaluates")
        );
    });
    let filter = compile("topic == 'orders' && partition == 3");
    per_record(
        "matches `topic == 'orders' && partition == 3`",
        ROUNDS,
        || {
            assert!(
                filter
                    .matches(&record, FilterValue::Absent)
                    .expect("evaluates")
            );
        },
    );
    let filter = compile("headers.region == 'eu'");
    per_record("matches `headers.region == 'eu'`", ROUNDS, || {
        assert!(
            filter
                .matches(&record, FilterValue::Absent)
                .expect("evaluates")
        );
    });
    let env = std::sync::Arc::new(cel::Env::stdlib());
    per_record("cel::Env::stdlib()", 10_000, || {
        black_box(cel::Env::stdlib());
    });
    per_record("cel::Context::with_env", ROUNDS, || {
        black_box(cel::Context::with_env(std::sync::Arc::clone(&env)));
    });
    let root = cel::Context::with_env(env);
    per_record("cel::Context::new_inner_scope", ROUNDS, || {
        black_box(root.new_inner_scope());
    });
    per_record("Filter::compile `value.duration > 100`", 10_000, || {
        black_box(compile("value.duration > 100"));
    });
}

/// Times the most expensive filters the default limits accept, on values of
/// the largest size; run with
/// `cargo test --release -- --ignored --nocapture worst_case`.
#[test]
#[ignore = "a measurement, not a check"]
fn worst_case_timing() {
    use std::time::Instant;

    let max = Limits::DEFAULT.max_value_bytes;
    let ones = format!(r#"{{"tags":[{}1]}}"#, "1,".repeat((max - 20) / 2));
    let keys: String = (0..max / 16).map(|i| format!(r#""k{i:07}":1,"#)).collect();
    let keys = format!(r#"{{"m":{{{}"end":1}}}}"#, keys);
    let strings = format!(r#"{{"tags":[{}"x"]}}"#, r#""vip","#.repeat((max - 20) / 6));
    for (source, value) in [
        ("value.tags.exists(t, t == 'vip')", &ones),
        ("value.tags.exists(t, t == 'nope')", &strings),
        ("value.m.exists(k, k == 'end')", &keys),
        ("'end' in value.m", &keys),
        ("'vip' in value.tags", &strings),
        ("value.tags.all(t, t == 1)", &ones),
        ("value.tags.filter(t, true).exists(x, x == 2)", &ones),
    ] {
        assert!(value.len() <= max, "{}", value.len());
        let filter = Filter::compile(source, &Limits::DEFAULT);
        let Ok(filter) = filter else {
            println!("{source}: refused");
            continue;
        };
        let start = Instant::now();
        let decoded = value_from_json(value.as_bytes()).expect("JSON");
        let decoding = start.elapsed();
        let result = filter.matches(&record(), FilterValue::Value(decoded));
        println!(
            "{source} on {} bytes: decoding {decoding:?}, in all {:?}: {result:?}",
            value.len(),
            start.elapsed()
        );
    }
}
