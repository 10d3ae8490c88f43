//! Tests of the schema module: the file format and its errors, lookups, the built-ins, both
//! formats on the write and read sides, and the bounds on untrusted input.

use super::file::EntryProblem;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use prost::Message as _;
use serde_json::json;
use streamgate::page_event::PageEvent;

use super::file::{self, FileLimits, Glob};
use super::*;

const ORDERS_PROTO: &str = r#"
syntax = "proto3";
package shop.v1;
message Order {
  string id = 1;
  int64 amount = 2;
  string currency = 3;
  repeated Item items = 4;
}
message Item {
  string sku = 1;
  int32 quantity = 2;
}
"#;

/// The `Order` of [`ORDERS_PROTO`], encoded independently of the descriptors.
#[derive(Clone, PartialEq, prost::Message)]
struct Order {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(int64, tag = "2")]
    amount: i64,
    #[prost(string, tag = "3")]
    currency: String,
    #[prost(message, repeated, tag = "4")]
    items: Vec<Item>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Item {
    #[prost(string, tag = "1")]
    sku: String,
    #[prost(int32, tag = "2")]
    quantity: i32,
}

const PAYMENT_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["amount", "currency"],
  "properties": {
    "amount": {"type": "number", "minimum": 0},
    "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$"}
  }
}"#;

fn topics() -> ServerTopics {
    ServerTopics {
        r2: "R2".to_owned(),
        r3: "R3".to_owned(),
        r4: "R4".to_owned(),
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schemas")
}

/// A descriptor set compiled at test time from `files` (name, text), rooted at `root`.
fn descriptor_set(files: &[(&str, &str)], root: &str, include_imports: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write proto");
    }
    let mut compiler = protox::Compiler::new([dir.path()]).expect("compiler");
    compiler
        .include_imports(include_imports)
        .include_source_info(false);
    compiler.open_file(root).expect("proto compiles");
    compiler.encode_file_descriptor_set()
}

/// A directory holding `files` (name, bytes) and a `schemas.toml` with `toml`.
struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new(files: &[(&str, &[u8])]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).expect("write");
        }
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn parse(&self, toml: &str) -> Result<Schemas, SchemaFileError> {
        Schemas::parse(toml, self.path(), &topics())
    }

    fn parse_with(&self, toml: &str, limits: &FileLimits) -> Result<Schemas, SchemaFileError> {
        file::parse(toml, self.path(), file::TEXT_LABEL, &topics(), limits)
    }
}

/// A directory with the orders descriptor set (built now) and the payment schema.
fn shop() -> Dir {
    let orders = descriptor_set(&[("orders.proto", ORDERS_PROTO)], "orders.proto", true);
    Dir::new(&[
        ("orders.binpb", &orders),
        ("payment.schema.json", PAYMENT_SCHEMA.as_bytes()),
    ])
}

const SHOP_TOML: &str = r#"
[[topic]]
name = "orders"
protobuf = { descriptor_set = "orders.binpb", message = "shop.v1.Order" }

[[topic]]
name = "payments.*"
json_schema = "payment.schema.json"
"#;

fn orders() -> Arc<TopicSchema> {
    shop()
        .parse(SHOP_TOML)
        .expect("loads")
        .for_topic("orders")
        .expect("orders")
}

fn payments() -> Arc<TopicSchema> {
    shop()
        .parse(SHOP_TOML)
        .expect("loads")
        .for_topic("payments.eu")
        .expect("payments")
}

fn builtin(topic: &str) -> Arc<TopicSchema> {
    Schemas::builtin(&topics())
        .for_topic(topic)
        .expect("built-in")
}

fn order() -> Order {
    Order {
        id: "o-1".to_owned(),
        amount: 1_234_567_890_123,
        currency: "EUR".to_owned(),
        items: vec![Item {
            sku: "sku-9".to_owned(),
            quantity: 2,
        }],
    }
}

/// The one problem of an error about an entry, with the whole message.
fn entry_error(result: Result<Schemas, SchemaFileError>) -> (usize, EntryProblem, String) {
    match result {
        Err(error) => {
            let message = error.to_string();
            match error {
                SchemaFileError::Entry { index, problem, .. } => (index, *problem, message),
                other => panic!("not an entry error: {other}"),
            }
        }
        Ok(schemas) => panic!("loaded: {schemas:?}"),
    }
}

fn err_message(result: Result<Schemas, SchemaFileError>) -> String {
    match result {
        Err(error) => error.to_string(),
        Ok(schemas) => panic!("loaded: {schemas:?}"),
    }
}

// ---- the file ----

#[test]
fn loads_the_fixture_file() {
    let schemas = Schemas::load(&fixtures().join("schemas.toml"), &topics()).expect("loads");
    assert_eq!(schemas.len(), 5, "3 built-ins and 2 entries");
    let orders = schemas.for_topic("orders").expect("orders");
    assert_eq!(orders.format(), Format::Protobuf);
    assert_eq!(orders.pattern(), "orders");
    assert_eq!(orders.message_name(), Some("shop.v1.Order"));
    assert_eq!(orders.content_type(), "application/x-protobuf");
    assert!(
        orders.source().ends_with("orders.binpb"),
        "{}",
        orders.source()
    );
    assert!(Path::new(orders.source()).exists());
    orders.validate(&order().encode_to_vec()).expect("an order");

    let payments = schemas.for_topic("payments.eu").expect("payments");
    assert_eq!(payments.format(), Format::JsonSchema);
    assert_eq!(payments.pattern(), "payments.*");
    assert_eq!(payments.message_name(), None);
    assert_eq!(payments.content_type(), "application/json");
    payments
        .validate(br#"{"amount": 12.5, "currency": "EUR"}"#)
        .expect("a payment");
    assert!(
        payments
            .validate(br#"{"amount": 12.5, "currency": "EURO"}"#)
            .is_err()
    );
    assert!(
        payments
            .validate(br#"{"amount": -1, "currency": "EUR"}"#)
            .is_err()
    );
    assert!(payments.validate(br#"{"currency": "EUR"}"#).is_err());
    assert!(
        schemas.for_topic("payments").is_none(),
        "the glob needs the dot"
    );
    assert!(schemas.for_topic("other").is_none());
}

#[test]
fn the_committed_descriptor_set_is_orders_proto_compiled() {
    let committed = std::fs::read(fixtures().join("orders.binpb")).expect("fixture");
    let proto = std::fs::read_to_string(fixtures().join("orders.proto")).expect("fixture");
    let built = descriptor_set(&[("orders.proto", &proto)], "orders.proto", true);
    let decode = |bytes: &[u8]| prost_types::FileDescriptorSet::decode(bytes).expect("set");
    assert_eq!(decode(&committed), decode(&built), "rebuild orders.binpb");
    // And the test's own text describes the same messages.
    let ours = descriptor_set(&[("orders.proto", ORDERS_PROTO)], "orders.proto", true);
    let messages = |bytes: &[u8]| {
        decode(bytes).file[0]
            .message_type
            .iter()
            .map(|m| (m.name.clone(), m.field.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(messages(&committed), messages(&ours));
}

#[test]
fn an_empty_file_has_only_the_built_ins() {
    for text in ["", "# nothing yet\n", "topic = []"] {
        let schemas = Schemas::parse(text, Path::new("/nonexistent"), &topics()).expect(text);
        assert_eq!(schemas.len(), 3);
        assert!(!schemas.is_empty());
    }
}

#[test]
fn refuses_unreadable_large_and_binary_files() {
    let dir = Dir::new(&[("binary.toml", b"name = \"\xff\"")]);
    let missing = dir.path().join("missing.toml");
    let error = Schemas::load(&missing, &topics()).expect_err("missing");
    assert!(matches!(error, SchemaFileError::Read { .. }), "{error}");
    assert!(error.to_string().contains("missing.toml"), "{error}");

    let error = Schemas::load(&dir.path().join("binary.toml"), &topics()).expect_err("binary");
    assert!(
        matches!(error, SchemaFileError::NotUtf8 { offset: 8, .. }),
        "{error}"
    );

    let big = dir.path().join("big.toml");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(limits::MAX_SCHEMA_FILE_BYTES + 1)
        .expect("sparse");
    let error = Schemas::load(&big, &topics()).expect_err("big");
    assert!(matches!(error, SchemaFileError::TooLarge { .. }), "{error}");
    assert!(error.to_string().contains("big.toml"), "{error}");
    let text = "#".repeat(limits::MAX_SCHEMA_FILE_BYTES as usize + 1);
    let error = Schemas::parse(&text, dir.path(), &topics()).expect_err("big text");
    assert!(matches!(error, SchemaFileError::TooLarge { .. }), "{error}");

    // A directory is not a file either.
    let error = Schemas::load(dir.path(), &topics()).expect_err("a directory");
    assert!(matches!(error, SchemaFileError::Read { .. }), "{error}");
}

#[test]
fn syntax_errors_say_where() {
    let error = Schemas::parse(
        "[[topic]]\nname = \"orders\"\njson_schema = \n",
        Path::new("/x"),
        &topics(),
    )
    .expect_err("syntax");
    match &error {
        SchemaFileError::Syntax { line, file, .. } => {
            assert_eq!(*line, 3, "{error}");
            assert_eq!(file, "<schemas>");
        }
        other => panic!("{other}"),
    }
    assert!(
        error
            .to_string()
            .starts_with("schema file <schemas>, line 3, column")
    );
}

#[test]
fn structure_errors() {
    let message = err_message(Schemas::parse("topics = []", Path::new("/x"), &topics()));
    assert!(message.contains("unknown key \"topics\""), "{message}");
    let message = err_message(Schemas::parse("topic = 5", Path::new("/x"), &topics()));
    assert!(message.contains("[[topic]]"), "{message}");
    let (index, problem, message) =
        entry_error(Schemas::parse("topic = [5]", Path::new("/x"), &topics()));
    assert_eq!(index, 1);
    assert!(matches!(problem, EntryProblem::Invalid(_)), "{message}");
}

#[test]
fn too_many_entries() {
    let text: String = (0..=limits::MAX_ENTRIES)
        .map(|i| format!("[[topic]]\nname = \"t{i}\"\njson_schema = \"s.json\"\n"))
        .collect();
    let error = Schemas::parse(&text, Path::new("/nonexistent"), &topics()).expect_err("1001");
    assert!(
        matches!(
            error,
            SchemaFileError::TooManyEntries {
                count: 1001,
                limit: 1000,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn unknown_and_missing_keys_name_the_entry() {
    let dir = shop();
    let (index, problem, message) = entry_error(dir.parse(
        r#"
[[topic]]
name = "payments.*"
json_schema = "payment.schema.json"

[[topic]]
name = "orders"
protobf = { descriptor_set = "orders.binpb", message = "shop.v1.Order" }
"#,
    ));
    assert_eq!(index, 2);
    assert!(matches!(problem, EntryProblem::Invalid(_)));
    assert!(message.contains("entry #2 (\"orders\")"), "{message}");
    assert!(message.contains("unknown field `protobf`"), "{message}");

    let (_, _, message) = entry_error(dir.parse(
        r#"
[[topic]]
name = "orders"
protobuf = { descriptor_set = "orders.binpb", message = "shop.v1.Order", strict = true }
"#,
    ));
    assert!(message.contains("unknown field `strict`"), "{message}");

    let (_, _, message) =
        entry_error(dir.parse("[[topic]]\njson_schema = \"payment.schema.json\"\n"));
    assert!(message.contains("entry #1 (no name)"), "{message}");
    assert!(message.contains("missing field `name`"), "{message}");

    let (_, _, message) = entry_error(dir.parse("[[topic]]\nname = 7\njson_schema = \"x\"\n"));
    assert!(message.contains("(no name)"), "{message}");
    assert!(message.contains("invalid type"), "{message}");
}

#[test]
fn names_must_be_topic_names_or_globs() {
    let dir = shop();
    let long = "n".repeat(250);
    for (name, says) in [
        ("", "it is empty"),
        ("bad topic", "contains ' '"),
        ("orders?", "contains '?'"),
        ("pagé", "contains 'é'"),
        (".", "reserved"),
        ("..", "reserved"),
        (long.as_str(), "250 characters long"),
    ] {
        let text = format!("[[topic]]\nname = \"{name}\"\njson_schema = \"payment.schema.json\"\n");
        let (_, problem, message) = entry_error(dir.parse(&text));
        assert!(matches!(problem, EntryProblem::BadName { .. }), "{message}");
        assert!(message.contains(says), "{name:?}: {message}");
        assert!(message.contains("[a-zA-Z0-9._-]"), "{message}");
        assert!(message.len() < 600, "{message}");
    }
    let max = "n".repeat(249);
    for name in ["*", "a*b*c", "...", "x.y_z-1", max.as_str()] {
        let text = format!("[[topic]]\nname = \"{name}\"\njson_schema = \"payment.schema.json\"\n");
        dir.parse(&text).expect(name);
    }
}

#[test]
fn exactly_one_schema_per_entry() {
    let dir = shop();
    let (_, problem, message) = entry_error(dir.parse("[[topic]]\nname = \"orders\"\n"));
    assert!(matches!(problem, EntryProblem::NoSchema), "{message}");
    assert!(message.contains("neither"), "{message}");
    let (_, problem, message) = entry_error(dir.parse(
        r#"
[[topic]]
name = "orders"
protobuf = { descriptor_set = "orders.binpb", message = "shop.v1.Order" }
json_schema = "payment.schema.json"
"#,
    ));
    assert!(matches!(problem, EntryProblem::BothSchemas), "{message}");
}

#[test]
fn the_server_topics_keep_their_built_in_schemas() {
    let dir = shop();
    for topic in ["R2", "R3", "R4"] {
        let text =
            format!("[[topic]]\nname = \"{topic}\"\njson_schema = \"payment.schema.json\"\n");
        let (_, problem, message) = entry_error(dir.parse(&text));
        assert!(matches!(problem, EntryProblem::BuiltIn { .. }), "{message}");
        assert!(message.contains("built-in schema"), "{message}");
        assert!(message.contains(&format!("\"{topic}\"")), "{message}");
    }
    // A glob matching them applies to other topics only.
    let schemas = dir
        .parse("[[topic]]\nname = \"R*\"\njson_schema = \"payment.schema.json\"\n")
        .expect("a glob");
    assert_eq!(schemas.for_topic("R2").expect("R2").source(), "built-in");
    assert_eq!(schemas.for_topic("R4").expect("R4").source(), "built-in");
    assert_ne!(schemas.for_topic("R5").expect("R5").source(), "built-in");
}

#[test]
fn duplicate_names_are_errors() {
    let (index, problem, message) = entry_error(shop().parse(
        r#"
[[topic]]
name = "pay*"
json_schema = "payment.schema.json"
[[topic]]
name = "orders"
json_schema = "payment.schema.json"
[[topic]]
name = "pay*"
json_schema = "payment.schema.json"
"#,
    ));
    assert_eq!(index, 3);
    assert!(
        matches!(problem, EntryProblem::Duplicate { first: 1 }),
        "{message}"
    );
}

#[test]
fn missing_and_oversized_schema_files() {
    let dir = shop();
    let (_, problem, message) =
        entry_error(dir.parse("[[topic]]\nname = \"a\"\njson_schema = \"nope.json\"\n"));
    assert!(
        matches!(problem, EntryProblem::ReadSchema { .. }),
        "{message}"
    );
    assert!(
        message.contains(&dir.path().join("nope.json").display().to_string()),
        "{message}"
    );
    let (_, problem, message) = entry_error(dir.parse(
        "[[topic]]\nname = \"a\"\nprotobuf = { descriptor_set = \"nope.binpb\", message = \"x.Y\" }\n",
    ));
    assert!(
        matches!(problem, EntryProblem::ReadSchema { .. }),
        "{message}"
    );
    assert!(message.contains("nope.binpb"), "{message}");
    let (_, _, message) = entry_error(dir.parse("[[topic]]\nname = \"a\"\njson_schema = \"\"\n"));
    assert!(message.contains("`json_schema` is empty"), "{message}");

    // Over the per-file limit (a sparse file: nothing is written).
    let big = dir.path().join("big.json");
    std::fs::File::create(&big)
        .expect("create")
        .set_len(limits::MAX_SCHEMA_BYTES + 1)
        .expect("sparse");
    let (_, problem, message) =
        entry_error(dir.parse("[[topic]]\nname = \"a\"\njson_schema = \"big.json\"\n"));
    assert!(
        matches!(problem, EntryProblem::SchemaTooLarge { .. }),
        "{message}"
    );
    assert!(message.contains("big.json"), "{message}");

    // Over the total: each file read once, however many entries name it.
    let limits = FileLimits {
        total_bytes: PAYMENT_SCHEMA.len() as u64 + 10,
        ..FileLimits::DEFAULT
    };
    let twice = r#"
[[topic]]
name = "a"
json_schema = "payment.schema.json"
[[topic]]
name = "b"
json_schema = "payment.schema.json"
"#;
    dir.parse_with(twice, &limits).expect("one read");
    let (index, problem, message) = entry_error(dir.parse_with(SHOP_TOML, &limits));
    assert_eq!(index, 2);
    assert!(
        matches!(problem, EntryProblem::TotalTooLarge { .. }),
        "{message}"
    );
}

#[test]
fn descriptor_set_errors() {
    let importer = r#"
syntax = "proto3";
package shop.v2;
import "orders.proto";
message Basket { repeated shop.v1.Order orders = 1; }
"#;
    let without_imports = descriptor_set(
        &[("orders.proto", ORDERS_PROTO), ("basket.proto", importer)],
        "basket.proto",
        false,
    );
    let dir = Dir::new(&[
        (
            "garbage.binpb",
            b"\x0a\xff\xff\xff\xff\x0fnot a descriptor set",
        ),
        ("basket.binpb", &without_imports),
        (
            "orders.binpb",
            &descriptor_set(&[("orders.proto", ORDERS_PROTO)], "orders.proto", true),
        ),
    ]);
    let entry = |set: &str, message: &str| {
        format!(
            "[[topic]]\nname = \"t\"\nprotobuf = {{ descriptor_set = \"{set}\", message = \"{message}\" }}\n"
        )
    };
    let (_, problem, message) = entry_error(dir.parse(&entry("garbage.binpb", "x.Y")));
    assert!(
        matches!(problem, EntryProblem::NotDescriptorSet { .. }),
        "{message}"
    );
    assert!(message.contains("garbage.binpb"), "{message}");

    let (_, problem, message) = entry_error(dir.parse(&entry("basket.binpb", "shop.v2.Basket")));
    assert!(
        matches!(problem, EntryProblem::NotDescriptorSet { .. }),
        "{message}"
    );
    assert!(message.contains("--include_imports"), "{message}");

    let (_, problem, message) = entry_error(dir.parse(&entry("orders.binpb", "shop.v1.Ordr")));
    assert!(
        matches!(problem, EntryProblem::MessageNotFound { .. }),
        "{message}"
    );
    assert!(message.contains("\"shop.v1.Ordr\""), "{message}");
    assert!(message.contains("shop.v1.Item, shop.v1.Order"), "{message}");

    let (_, _, message) = entry_error(dir.parse(&entry("orders.binpb", "Order")));
    assert!(message.contains("did you mean shop.v1.Order?"), "{message}");

    // A leading dot, as in descriptors, is fine.
    let schemas = dir
        .parse(&entry("orders.binpb", ".shop.v1.Order"))
        .expect("loads");
    assert_eq!(
        schemas.for_topic("t").expect("t").message_name(),
        Some("shop.v1.Order")
    );
}

#[test]
fn json_schema_errors_carry_their_pointer() {
    let dir = Dir::new(&[
        ("not.json", b"{\"type\": \"object\",}"),
        (
            "bad-type.json",
            br#"{"type": "object", "properties": {"a": {"type": "nope"}}}"#,
        ),
        (
            "remote.json",
            br#"{"$ref": "https://example.com/schemas/x.json"}"#,
        ),
        ("file-ref.json", br#"{"$ref": "other.json"}"#),
        (
            "meta.json",
            br#"{"$schema": "https://example.com/my-meta", "type": "object"}"#,
        ),
        (
            "regex.json",
            br#"{"type": "string", "pattern": "(unclosed"}"#,
        ),
        (
            "big-regex.json",
            br#"{"type": "string", "pattern": "^(\\w{100}){100}(\\w{100}){100}$"}"#,
        ),
    ]);
    let parse = |file: &str| {
        dir.parse(&format!(
            "[[topic]]\nname = \"t\"\njson_schema = \"{file}\"\n"
        ))
    };
    let (_, problem, message) = entry_error(parse("not.json"));
    assert!(matches!(problem, EntryProblem::NotJson { .. }), "{message}");
    assert!(message.contains("line 1 column"), "{message}");

    let (_, problem, message) = entry_error(parse("bad-type.json"));
    match problem {
        EntryProblem::InvalidJsonSchema { pointer, .. } => {
            assert_eq!(pointer, "/properties/a/type", "{message}");
        }
        other => panic!("{other}"),
    }
    assert!(message.contains("at /properties/a/type"), "{message}");

    // Remote references fail at load; nothing is fetched (there is no network here, and
    // the validator has no HTTP client: it would say so rather than time out).
    let started = Instant::now();
    for file in ["remote.json", "file-ref.json", "meta.json"] {
        let (_, problem, message) = entry_error(parse(file));
        assert!(
            matches!(problem, EntryProblem::InvalidJsonSchema { .. }),
            "{file}: {message}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(5));

    let (_, problem, message) = entry_error(parse("regex.json"));
    assert!(
        matches!(problem, EntryProblem::InvalidJsonSchema { .. }),
        "{message}"
    );
    assert!(message.contains("unclosed"), "{message}");
    let (_, problem, message) = entry_error(parse("big-regex.json"));
    assert!(
        matches!(problem, EntryProblem::InvalidJsonSchema { .. }),
        "{message}"
    );
}

// ---- lookups ----

#[test]
fn exact_names_win_then_the_first_glob() {
    let dir = shop();
    let schemas = dir
        .parse(
            r#"
[[topic]]
name = "payments.*"
json_schema = "payment.schema.json"
[[topic]]
name = "*"
protobuf = { descriptor_set = "orders.binpb", message = "shop.v1.Item" }
[[topic]]
name = "payments.eu"
protobuf = { descriptor_set = "orders.binpb", message = "shop.v1.Order" }
[[topic]]
name = "pay*"
protobuf = { descriptor_set = "orders.binpb", message = "shop.v1.Order" }
"#,
        )
        .expect("loads");
    assert_eq!(schemas.len(), 7);
    let pattern = |topic: &str| schemas.for_topic(topic).expect(topic).pattern().to_owned();
    assert_eq!(
        pattern("payments.eu"),
        "payments.eu",
        "exact beats an earlier glob"
    );
    assert_eq!(pattern("payments.us"), "payments.*", "first glob listed");
    assert_eq!(pattern("payroll"), "*", "`*` is listed before `pay*`");
    assert_eq!(pattern("anything"), "*");
    assert_eq!(pattern("R3"), "R3");
    let listed: Vec<_> = schemas.entries().map(|s| s.pattern().to_owned()).collect();
    assert_eq!(
        listed,
        ["R2", "R3", "R4", "payments.*", "*", "payments.eu", "pay*"]
    );
}

#[test]
fn globs_match_whole_names() {
    let cases = [
        ("orders", "orders", true),
        ("orders", "orders2", false),
        ("*", "", true),
        ("*", "x", true),
        ("a*", "a", true),
        ("a*", "ba", false),
        ("*.v1", "shop.v1", true),
        ("*.v1", "shop.v12", false),
        ("a*b*c", "abc", true),
        ("a*b*c", "aXbYc", true),
        ("a*b*c", "acb", false),
        ("a*a", "a", false),
        ("a*a", "aa", true),
        ("**", "x", true),
    ];
    for (pattern, name, expected) in cases {
        assert_eq!(
            Glob::new(pattern).matches(name),
            expected,
            "{pattern} ~ {name}"
        );
    }
}

// ---- built-ins ----

#[test]
fn built_ins_are_there_without_a_file() {
    let schemas = Schemas::builtin(&topics());
    assert_eq!(schemas.len(), 3);
    for topic in ["R2", "R3", "R4"] {
        let schema = schemas.for_topic(topic).expect(topic);
        assert_eq!(schema.source(), "built-in");
        assert_eq!(schema.format(), Format::JsonSchema);
        assert_eq!(schema.content_type(), "application/json");
        assert!(schema.definition().contains("2020-12"));
    }
    assert!(schemas.for_topic("R1").is_none());
    assert!(builtin("R2").definition().contains("\"PageEvent\""));
    assert!(builtin("R4").definition().contains("window_start_ms"));
    let same = ServerTopics {
        r3: "R2".to_owned(),
        ..topics()
    };
    assert_eq!(Schemas::builtin(&same).len(), 2);
}

#[test]
fn page_event_schema_accepts_what_the_server_writes() {
    let schema = builtin("R2");
    let extremes = [
        0,
        -1,
        1_662_925_267_331,
        1_795_320_765_000,
        253_402_300_800_000,
        -62_167_219_200_001,
        -8_334_601_228_800_000,
        8_210_266_876_799_999,
    ];
    for (i, date_ms) in extremes.into_iter().enumerate() {
        for (name, user, duration_ms) in [
            ("P1", "U2", 4521),
            ("", "", 0),
            ("pagé \"x\"\n", "Zoë", -5),
            ("P9", "U1", i64::MAX),
            ("P9", "U1", i64::MIN),
        ] {
            let event = PageEvent {
                name: name.into(),
                user: user.into(),
                date_ms,
                duration_ms,
            };
            let json = event.to_json();
            schema
                .validate(&json)
                .unwrap_or_else(|e| panic!("#{i} {}: {e}", String::from_utf8_lossy(&json)));
            // The date as epoch millis, which readers accept too.
            let value = json!({
                "name": name, "user": user, "date": date_ms, "duration": duration_ms
            });
            schema
                .encode_json(&value)
                .unwrap_or_else(|e| panic!("{value}: {e}"));
        }
    }
    // The documented example and what Jackson writes or reads.
    for date in [
        "\"2026-12-08T00:00:00.000+00:00\"",
        "\"2022-09-11T19:41:07.331+0000\"",
        "\"2022-09-11T19:41:07.331Z\"",
        "\"2022-09-11T21:41:07.331+02:00\"",
        "\"2022-09-11T19:41:07+00:00\"",
        "\"2022-09-11 19:41:07.331+00:00\"",
        "\"+10000-01-01T00:00:00.000+00:00\"",
        "1662925267331",
    ] {
        let json =
            format!(r#"{{"name":"P1","user":"U2","date":{date},"duration":4521,"extra":true}}"#);
        PageEvent::decode(json.as_bytes()).expect("the reader takes it");
        schema
            .validate(json.as_bytes())
            .unwrap_or_else(|e| panic!("{json}: {e}"));
    }
}

#[test]
fn page_event_schema_refuses_usual_mistakes() {
    let schema = builtin("R3");
    for bad in [
        r#"{"name":"P1","user":"U1","date":"yesterday","duration":1}"#,
        r#"{"name":"P1","user":"U1","date":"2022-09-11","duration":1}"#,
        r#"{"name":"P1","user":"U1","date":"2022-09-11T19:41:07","duration":1}"#,
        r#"{"name":"P1","user":"U1","date":"1662925267331","duration":1}"#,
        r#"{"name":"P1","user":"U1","date":9000000000000000000,"duration":1}"#,
        r#"{"name":"P1","user":"U1","date":0}"#,
        r#"{"name":1,"user":"U1","date":0,"duration":1}"#,
        r#"{"name":"P1","user":"U1","date":0,"duration":"long"}"#,
        r#"{"name":"P1","user":"U1","date":0,"duration":1.5}"#,
        r#"{"name":"P1","user":"U1","date":0,"duration":9223372036854775808}"#,
        r#"[1,2]"#,
        "hello",
    ] {
        assert!(
            PageEvent::decode(bad.as_bytes()).is_err(),
            "the reader takes {bad}"
        );
        assert!(schema.validate(bad.as_bytes()).is_err(), "{bad}");
    }
    let error = schema
        .validate(br#"{"name":"P1","user":"U1","date":0}"#)
        .expect_err("no duration");
    assert_eq!(error.violations()[0].path, "");
    assert!(
        error
            .to_string()
            .contains("\"duration\" is a required property"),
        "{error}"
    );
    let error = schema
        .validate(br#"{"name":"P1","user":"U1","date":0,"duration":"long"}"#)
        .expect_err("a string");
    assert_eq!(error.violations()[0].path, "/duration");
}

/// The documented R4 sample, and variants, as the analytics worker writes them.
#[test]
fn stats_record_schema_accepts_what_the_server_writes() {
    let schema = builtin("R4");
    let documented = r#"{"page":"P1","window_start":"2026-11-22T04:12:45.000+00:00",
        "window_end":"2026-11-22T04:12:50.000+00:00","window_start_ms":1795320765000,
        "window_end_ms":1795320770000,"partition":0,"input_offset":22,"count":17,"final":false}"#;
    schema.validate(documented.as_bytes()).expect("documented");
    for (page, partition, input_offset, count, is_final) in [
        ("P1", 2, 1234, 12_u64, true),
        ("pagé", i32::MAX, i64::MAX, u64::MAX, false),
        ("", 0, 0, 0, true),
    ] {
        let value = json!({
            "page": page,
            "window_start": streamgate::page_event::format_date(1_662_925_265_000),
            "window_end": streamgate::page_event::format_date(1_662_925_270_000),
            "window_start_ms": 1_662_925_265_000_i64,
            "window_end_ms": 1_662_925_270_000_i64,
            "partition": partition,
            "input_offset": input_offset,
            "count": count,
            "final": is_final,
        });
        let bytes = serde_json::to_vec(&value).expect("json");
        schema
            .validate(&bytes)
            .unwrap_or_else(|e| panic!("{value}: {e}"));
    }
    let broken = |field: &str, with: serde_json::Value| {
        let mut value: serde_json::Value = serde_json::from_str(documented).expect("json");
        if with.is_null() {
            value.as_object_mut().expect("object").remove(field);
        } else {
            value[field] = with;
        }
        serde_json::to_vec(&value).expect("json")
    };
    for (field, with) in [
        ("final", serde_json::Value::Null),
        ("page", serde_json::Value::Null),
        ("count", json!("17")),
        ("count", json!(-1)),
        ("partition", json!(-1)),
        ("partition", json!(2_147_483_648_i64)),
        ("final", json!("false")),
        ("window_start_ms", json!("1795320765000")),
    ] {
        let error = schema
            .validate(&broken(field, with.clone()))
            .expect_err(field);
        let path = &error.violations()[0].path;
        assert!(
            path.is_empty() || path == &format!("/{field}"),
            "{field} {with}: {error}"
        );
    }
}

// ---- Protobuf ----

#[test]
fn protobuf_validate_checks_the_wire_format() {
    let orders = orders();
    orders.validate(&order().encode_to_vec()).expect("an order");
    orders.validate(b"").expect("all defaults");
    // A field this version does not know (a newer producer's): allowed.
    let mut newer = order().encode_to_vec();
    newer.extend_from_slice(&[0x48, 0x01, 0x52, 0x02, b'h', b'i']); // 9: varint, 10: bytes
    orders.validate(&newer).expect("unknown fields pass");

    let good = order().encode_to_vec();
    let truncated = &good[..good.len() - 3];
    let error = orders.validate(truncated).expect_err("truncated");
    assert_eq!(error.format(), Format::Protobuf);
    assert!(
        error
            .to_string()
            .starts_with("value does not match the schema of topic orders (Protobuf): "),
        "{error}"
    );
    // Field 2 (amount) as length-delimited: the wrong wire type.
    let error = orders.validate(&[0x12, 0x01, 0x00]).expect_err("wire type");
    assert!(error.to_string().contains("wire type"), "{error}");
    // Field 1 (id) with invalid UTF-8.
    let error = orders
        .validate(&[0x0a, 0x02, 0xff, 0xfe])
        .expect_err("utf-8");
    assert!(error.to_string().contains("UTF-8"), "{error}");
    assert!(
        orders.validate(b"{\"id\":\"a\"}").is_err(),
        "JSON is not Protobuf"
    );
}

#[test]
fn protobuf_encode_json_round_trips() {
    let orders = orders();
    for amount in [json!("1234567890123"), json!(1_234_567_890_123_i64)] {
        let value = json!({
            "id": "o-1",
            "amount": amount,
            "currency": "EUR",
            "items": [{"sku": "sku-9", "quantity": 2}],
        });
        let bytes = orders.encode_json(&value).expect("encodes");
        assert_eq!(Order::decode(bytes.as_slice()).expect("decodes"), order());
        // And the canonical JSON of those bytes is the input with the int64 as a string.
        let decoded = orders
            .decode(&bytes, &DecodeLimits::default())
            .expect("decodes");
        assert_eq!(decoded["amount"], json!("1234567890123"));
        assert_eq!(
            orders.encode_json(&decoded).expect("again"),
            bytes,
            "decode then encode is the identity"
        );
    }
    // Proto field names are accepted as well as JSON names; the wire is the same.
    let snake = orders.encode_json(&json!({"id": "x"})).expect("encodes");
    assert_eq!(Order::decode(snake.as_slice()).expect("decodes").id, "x");
}

#[test]
fn protobuf_encode_json_names_the_field_in_error() {
    let orders = orders();
    let error = orders
        .encode_json(&json!({"id": "a", "colour": "red"}))
        .expect_err("unknown field");
    let violation = &error.violations()[0];
    assert_eq!(violation.path, "/colour");
    assert!(violation.message.contains("colour"), "{violation}");
    assert!(
        error
            .to_string()
            .starts_with("value does not match the schema of topic orders (Protobuf): /colour: "),
        "{error}"
    );

    let error = orders
        .encode_json(&json!({"amount": "lots"}))
        .expect_err("wrong type");
    assert_eq!(error.violations()[0].path, "/amount", "{error}");
    let error = orders
        .encode_json(&json!({"items": [{"sku": "a"}, {"sku": "b", "quantity": "two"}]}))
        .expect_err("nested");
    assert_eq!(error.violations()[0].path, "/items/1/quantity", "{error}");
    let error = orders
        .encode_json(&json!({"items": [{"sku": "a", "colour": 1}]}))
        .expect_err("nested unknown");
    assert_eq!(error.violations()[0].path, "/items/0/colour", "{error}");
    let error = orders
        .encode_json(&json!({"amount": 1.5}))
        .expect_err("not an integer");
    assert_eq!(error.violations()[0].path, "/amount", "{error}");
    let error = orders
        .encode_json(&json!({"amount": "99999999999999999999"}))
        .expect_err("out of range");
    assert_eq!(error.violations()[0].path, "/amount", "{error}");
    let error = orders
        .encode_json(&json!([1, 2]))
        .expect_err("not an object");
    assert_eq!(error.violations()[0].path, "", "{error}");

    // User data is quoted at most 64 characters at a time.
    let long = "z".repeat(10_000);
    for value in [json!({ long.clone(): 1 }), json!({"amount": long.clone()})] {
        let error = orders.encode_json(&value).expect_err("refused");
        let text = error.to_string();
        assert!(text.len() < 400, "{text}");
        assert!(!text.contains(&"z".repeat(65)), "{text}");
    }
}

#[test]
fn protobuf_decode_canonical_and_for_filters() {
    let orders = orders();
    let limits = DecodeLimits::default();
    let bytes = order().encode_to_vec();
    let canonical = orders.decode(&bytes, &limits).expect("decodes");
    assert_eq!(
        canonical,
        json!({
            "id": "o-1",
            "amount": "1234567890123",
            "currency": "EUR",
            "items": [{"sku": "sku-9", "quantity": 2}],
        })
    );
    let filter = orders.decode_for_filter(&bytes, &limits).expect("decodes");
    assert_eq!(
        serde_json::to_value(&filter).expect("json")["amount"],
        json!(1_234_567_890_123_i64)
    );
    assert!(serde_json::to_value(&filter).expect("json")["amount"].is_i64());
    assert_eq!(
        serde_json::to_value(&filter).expect("serialises"),
        json!({
            "id": "o-1",
            "amount": 1_234_567_890_123_i64,
            "currency": "EUR",
            "items": [{"sku": "sku-9", "quantity": 2}],
        })
    );
    // Defaults: left out of the canonical form, present for filters.
    let sparse = Order {
        id: "o-2".to_owned(),
        ..Order::default()
    }
    .encode_to_vec();
    assert_eq!(
        orders.decode(&sparse, &limits).expect("decodes"),
        json!({"id": "o-2"})
    );
    assert_eq!(
        serde_json::to_value(orders.decode_for_filter(&sparse, &limits).expect("decodes"))
            .expect("json"),
        json!({"id": "o-2", "amount": 0, "currency": "", "items": []})
    );
    let error = orders
        .decode(&[0x0a, 0x05], &limits)
        .expect_err("truncated");
    assert!(matches!(error, DecodeError::Protobuf { .. }), "{error}");
    assert!(
        error.to_string().starts_with("not a valid shop.v1.Order: "),
        "{error}"
    );
}

#[test]
fn protobuf_definition_is_readable() {
    let definition = orders().definition();
    for line in [
        "// shop.v1.Order from orders.proto (proto3)",
        "message Order {",
        "  string id = 1;",
        "  int64 amount = 2;",
        "  string currency = 3;",
        "  repeated shop.v1.Item items = 4;",
        "message Item {",
        "  int32 quantity = 2;",
    ] {
        assert!(definition.contains(line), "{line:?} in\n{definition}");
    }

    let rich = r#"
syntax = "proto3";
package rich.v1;
import "google/protobuf/timestamp.proto";
enum Status { STATUS_UNSPECIFIED = 0; STATUS_PAID = 1; }
message Money { string currency = 1; int64 units = 2; }
message Invoice {
  message Line { string text = 1; Money price = 2; }
  map<string, Money> totals = 1;
  repeated Line lines = 2;
  optional string note = 3;
  oneof payer { string person = 4; string company = 5; }
  Status status = 6;
  google.protobuf.Timestamp at = 7;
  Invoice previous = 8;
}
"#;
    let dir = Dir::new(&[(
        "rich.binpb",
        &descriptor_set(&[("rich.proto", rich)], "rich.proto", true),
    )]);
    let schemas = dir
        .parse(
            "[[topic]]\nname = \"invoices\"\nprotobuf = { descriptor_set = \"rich.binpb\", message = \"rich.v1.Invoice\" }\n",
        )
        .expect("loads");
    let definition = schemas
        .for_topic("invoices")
        .expect("invoices")
        .definition();
    for line in [
        "message Invoice {",
        "  map<string, rich.v1.Money> totals = 1;",
        "  repeated rich.v1.Invoice.Line lines = 2;",
        "  optional string note = 3;",
        "  oneof payer {",
        "    string person = 4;",
        "  rich.v1.Status status = 6;",
        "  google.protobuf.Timestamp at = 7;",
        "  rich.v1.Invoice previous = 8;",
        "// rich.v1.Invoice.Line",
        "message Line {",
        "message Money {",
        "enum Status {",
        "  STATUS_PAID = 1;",
    ] {
        assert!(definition.contains(line), "{line:?} in\n{definition}");
    }
    assert_eq!(
        definition.matches("message Invoice {").count(),
        1,
        "recursion once"
    );
    assert!(
        !definition.contains("message Timestamp"),
        "well-known types are not listed"
    );
}

#[test]
fn definitions_are_cut_at_64_kib() {
    let fields: String = (1..=3000)
        .map(|i| format!("  string a_rather_long_field_name_number_{i} = {i};\n"))
        .collect();
    let proto = format!("syntax = \"proto3\";\npackage big;\nmessage Big {{\n{fields}}}\n");
    let long_description = "d".repeat(100_000);
    let big_json = format!(r#"{{"description": "{long_description}", "type": "object"}}"#);
    let dir = Dir::new(&[
        (
            "big.binpb",
            &descriptor_set(&[("big.proto", &proto)], "big.proto", true),
        ),
        ("big.json", big_json.as_bytes()),
    ]);
    let schemas = dir
        .parse(
            r#"
[[topic]]
name = "big"
protobuf = { descriptor_set = "big.binpb", message = "big.Big" }
[[topic]]
name = "big-json"
json_schema = "big.json"
"#,
        )
        .expect("loads");
    for topic in ["big", "big-json"] {
        let definition = schemas.for_topic(topic).expect(topic).definition();
        assert!(definition.len() <= limits::MAX_DEFINITION_BYTES, "{topic}");
        assert!(definition.ends_with("longer than 64 KiB\n"), "{topic}");
    }
}

// ---- JSON Schema ----

#[test]
fn json_schema_violations_have_pointers() {
    let payments = payments();
    let error = payments
        .validate(br#"{"amount": -1, "currency": "EURO"}"#)
        .expect_err("two violations");
    let paths: Vec<&str> = error.violations().iter().map(|v| v.path.as_str()).collect();
    assert_eq!(paths.len(), 2, "{error}");
    assert!(
        paths.contains(&"/amount") && paths.contains(&"/currency"),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.starts_with("value does not match the schema of topic payments.* (JSON Schema): "),
        "{text}"
    );
    assert!(
        text.contains("/amount: -1 is less than the minimum of 0"),
        "{text}"
    );
    assert!(
        text.contains("/currency: \"EURO\" does not match"),
        "{text}"
    );
    assert_eq!(
        error
            .clone()
            .in_topic("payments.eu")
            .to_string()
            .split(" (")
            .next(),
        Some("value does not match the schema of topic payments.eu")
    );

    let error = payments.validate(b"{}").expect_err("required");
    assert_eq!(error.violations().len(), 2, "{error}");
    assert!(error.violations().iter().all(|v| v.path.is_empty()));
    assert!(
        error
            .to_string()
            .contains("\"amount\" is a required property")
    );

    let error = payments.validate(b"{\"amount\": 1,").expect_err("not JSON");
    assert!(error.to_string().contains("not JSON: EOF"), "{error}");
    let error = payments.validate(b"\xff").expect_err("not UTF-8");
    assert!(error.to_string().contains("not JSON"), "{error}");
}

#[test]
fn json_schema_lists_three_violations_and_counts_the_rest() {
    let dir = Dir::new(&[(
        "ints.json",
        br#"{"type": "array", "items": {"type": "integer"}}"#,
    )]);
    let schemas = dir
        .parse("[[topic]]\nname = \"ints\"\njson_schema = \"ints.json\"\n")
        .expect("loads");
    let ints = schemas.for_topic("ints").expect("ints");
    let error = ints
        .validate(br#"[1, "a", "b", 2, "c", "d", "e"]"#)
        .expect_err("five wrong");
    assert_eq!(error.violations().len(), 3);
    assert_eq!(error.more(), 2);
    assert_eq!(error.violations()[0].path, "/1");
    assert!(
        error.to_string().ends_with("; and 2 more violations"),
        "{error}"
    );
}

#[test]
fn json_schema_messages_do_not_echo_values() {
    let payments = payments();
    let long = "q".repeat(100_000);
    for value in [
        json!({"amount": long, "currency": "EUR"}),
        json!({"amount": {"nested": long}, "currency": long}),
        json!({"amount": 1, "currency": "EUR", "x": [long]}),
    ] {
        let Err(error) = payments.encode_json(&value) else {
            continue;
        };
        let text = error.to_string();
        assert!(text.len() < 1000, "{}", text.len());
        assert!(!text.contains(&"q".repeat(65)), "{text}");
    }
}

#[test]
fn json_schema_messages_cut_keys_too() {
    let dir = Dir::new(&[(
        "closed.json",
        br#"{"type": "object", "properties": {"a": {"type": "integer"}},
            "additionalProperties": false,
            "propertyNames": {"maxLength": 10},
            "not": {"required": ["forbidden"], "description": "a long schema text that only the error for not quotes"}}"#,
    )]);
    let schemas = dir
        .parse("[[topic]]\nname = \"closed\"\njson_schema = \"closed.json\"\n")
        .expect("loads");
    let closed = schemas.for_topic("closed").expect("closed");
    let long = "k".repeat(10_000);
    let error = closed
        .encode_json(&json!({ long.clone(): 1, "b": 2, "forbidden": {"x": long.clone()} }))
        .expect_err("refused");
    let text = error.to_string();
    assert!(!text.contains(&"k".repeat(65)), "{text}");
    assert!(text.len() < 2000, "{text}");
    assert!(
        text.contains("Additional properties are not allowed ('"),
        "{text}"
    );
    assert!(text.contains("were unexpected"), "{text}");
    let error = closed
        .encode_json(&json!({ "toolongname": 1 }))
        .expect_err("name");
    assert!(
        error
            .violations()
            .iter()
            .any(|v| v.message.starts_with("property name ")),
        "{error}"
    );
}

#[test]
fn json_schema_encode_json_is_compact() {
    let payments = payments();
    let bytes = payments
        .encode_json(&json!({"amount": 12.5, "currency": "EUR"}))
        .expect("valid");
    assert_eq!(bytes, br#"{"amount":12.5,"currency":"EUR"}"#);
    let error = payments
        .encode_json(&json!({"amount": "12", "currency": "EUR"}))
        .expect_err("a string");
    assert_eq!(error.violations()[0].path, "/amount");
}

#[test]
fn json_decode_does_not_check_the_schema() {
    let payments = payments();
    let limits = DecodeLimits::default();
    let value = br#"{"amount": 12345678901234, "currency": "EURO"}"#;
    let decoded = payments.decode(value, &limits).expect("JSON");
    assert_eq!(decoded["amount"], json!(12_345_678_901_234_i64));
    let filter = payments.decode_for_filter(value, &limits).expect("JSON");
    assert_eq!(serde_json::to_value(&filter).expect("json"), decoded);
    let error = payments.decode(b"not json", &limits).expect_err("not JSON");
    assert!(matches!(error, DecodeError::Json { .. }), "{error}");
    assert!(error.to_string().contains("line 1 column"), "{error}");
}

// ---- bounds on untrusted input ----

#[test]
fn deep_json_is_an_error_not_a_stack_overflow() {
    let deep = "[".repeat(100_000);
    let limits = DecodeLimits::default();
    for schema in [payments(), builtin("R2"), builtin("R4")] {
        let error = schema.validate(deep.as_bytes()).expect_err("deep");
        assert!(error.to_string().contains("recursion limit"), "{error}");
        let error = schema.decode(deep.as_bytes(), &limits).expect_err("deep");
        assert!(matches!(error, DecodeError::Json { .. }), "{error}");
        assert!(schema.decode_for_filter(deep.as_bytes(), &limits).is_err());
    }
    // The deepest JSON serde_json parses still validates (the validator recurses too).
    let ok_deep = format!("{}{}", "[".repeat(120), "]".repeat(120));
    payments()
        .validate(ok_deep.as_bytes())
        .expect_err("not an object");
}

#[test]
fn deep_protobuf_is_an_error_not_a_stack_overflow() {
    let proto =
        "syntax = \"proto3\";\npackage deep;\nmessage Node { Node child = 1; int32 v = 2; }\n";
    let dir = Dir::new(&[(
        "deep.binpb",
        &descriptor_set(&[("deep.proto", proto)], "deep.proto", true),
    )]);
    let schemas = dir
        .parse("[[topic]]\nname = \"deep\"\nprotobuf = { descriptor_set = \"deep.binpb\", message = \"deep.Node\" }\n")
        .expect("loads");
    let deep = schemas.for_topic("deep").expect("deep");
    let nest = |depth: usize| {
        let mut bytes = vec![0x10, 0x01];
        for _ in 0..depth {
            let mut outer = vec![0x0a];
            prost::encoding::encode_varint(bytes.len() as u64, &mut outer);
            outer.extend_from_slice(&bytes);
            bytes = outer;
        }
        bytes
    };
    let limits = DecodeLimits::default();
    deep.validate(&nest(50)).expect("50 deep");
    deep.decode(&nest(50), &limits).expect("50 deep");
    for bytes in [nest(200), nest(100_000)] {
        let error = deep.validate(&bytes).expect_err("too deep");
        assert!(error.to_string().contains("recursion limit"), "{error}");
        assert!(deep.decode(&bytes, &limits).is_err());
    }
    // Unknown groups nested deep: prost's limit holds there too.
    // Field 3, start group, 100k times; then as many end groups.
    let mut groups = vec![0x1b; 100_000];
    groups.extend(std::iter::repeat_n(0x1c, 100_000));
    assert!(deep.validate(&groups).is_err());
    assert!(orders().validate(&groups).is_err());
}

#[test]
fn deep_struct_json_is_refused_at_encode() {
    let proto = r#"
syntax = "proto3";
package doc;
import "google/protobuf/struct.proto";
message Doc { google.protobuf.Value body = 1; }
"#;
    let dir = Dir::new(&[(
        "doc.binpb",
        &descriptor_set(&[("doc.proto", proto)], "doc.proto", true),
    )]);
    let schemas = dir
        .parse("[[topic]]\nname = \"doc\"\nprotobuf = { descriptor_set = \"doc.binpb\", message = \"doc.Doc\" }\n")
        .expect("loads");
    let doc = schemas.for_topic("doc").expect("doc");
    let nested = |depth: usize| {
        let text = format!(
            "{{\"body\": {}1.5{}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        serde_json::from_str::<serde_json::Value>(&text).expect("json")
    };
    let bytes = doc.encode_json(&nested(10)).expect("shallow");
    doc.validate(&bytes).expect("readable");
    let limits = DecodeLimits::default();
    assert_eq!(doc.decode(&bytes, &limits).expect("decodes"), nested(10));
    // 100 JSON levels are 200 message levels: no reader could decode them.
    let error = doc.encode_json(&nested(100)).expect_err("too deep");
    assert!(error.to_string().contains("recursion limit"), "{error}");
}

#[test]
fn values_over_max_bytes_are_not_decoded() {
    let limits = DecodeLimits {
        max_bytes: 16,
        ..DecodeLimits::default()
    };
    let bytes = order().encode_to_vec();
    assert!(bytes.len() > 16);
    assert_eq!(
        orders().decode(&bytes, &limits),
        Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: 16
        })
    );
    let json = br#"{"amount": 1, "currency": "EUR"}"#;
    assert!(matches!(
        payments().decode_for_filter(json, &limits),
        Err(DecodeError::TooLarge { .. })
    ));
    assert_eq!(DecodeLimits::default().max_bytes, 1 << 20);
    assert_eq!(DecodeLimits::default().max_json_bytes, 4 << 20);
}

#[test]
fn json_that_grows_past_max_json_bytes_is_refused() {
    let proto = r#"
syntax = "proto3";
package packed;
enum E { E_UNSPECIFIED_WITH_A_RATHER_LONG_NAME_TO_SHOW_GROWTH = 0; }
message Packed { repeated int64 v = 1; repeated E e = 2; }
"#;
    let dir = Dir::new(&[(
        "p.binpb",
        &descriptor_set(&[("p.proto", proto)], "p.proto", true),
    )]);
    let schemas = dir
        .parse("[[topic]]\nname = \"p\"\nprotobuf = { descriptor_set = \"p.binpb\", message = \"packed.Packed\" }\n")
        .expect("loads");
    let packed = schemas.for_topic("p").expect("p");
    // 100k zero varints, packed: 100 KB on the wire, 400 KB as canonical JSON.
    let mut bytes = vec![0x0a];
    prost::encoding::encode_varint(100_000, &mut bytes);
    bytes.extend(std::iter::repeat_n(0u8, 100_000));
    let limits = DecodeLimits {
        max_bytes: 1 << 20,
        max_json_bytes: 200_000,
    };
    packed.validate(&bytes).expect("well-formed");
    assert_eq!(
        packed.decode(&bytes, &limits),
        Err(DecodeError::JsonTooLarge { limit: 200_000 })
    );
    assert!(matches!(
        packed.decode_for_filter(&bytes, &limits),
        Err(DecodeError::JsonTooLarge { .. })
    ));
    let decoded = packed
        .decode(&bytes, &DecodeLimits::default())
        .expect("under 4 MiB");
    assert_eq!(decoded["v"].as_array().map(Vec::len), Some(100_000));
    // Enums by name: 1 byte each on the wire, 57 in JSON.
    let mut bytes = vec![0x12];
    prost::encoding::encode_varint(100_000, &mut bytes);
    bytes.extend(std::iter::repeat_n(0u8, 100_000));
    assert!(matches!(
        packed.decode(&bytes, &DecodeLimits::default()),
        Err(DecodeError::JsonTooLarge { .. })
    ));

    // JSON numbers written longer than read.
    let json = format!("[{}1e15]", "1e15,".repeat(20_000));
    let limits = DecodeLimits {
        max_bytes: 1 << 20,
        max_json_bytes: 200_000,
    };
    assert!(json.len() < 200_000);
    assert!(matches!(
        payments().decode(json.as_bytes(), &limits),
        Err(DecodeError::JsonTooLarge { .. })
    ));
}

#[test]
fn patterns_cost_bounded_time() {
    let dir = Dir::new(&[
        ("evil.json", br#"{"type": "string", "pattern": "^(a+)+$"}"#),
        (
            "lookahead.json",
            br#"{"type": "string", "pattern": "^(?=.*[0-9])[a-z0-9]+$"}"#,
        ),
        (
            "backref.json",
            br#"{"type": "string", "pattern": "^(a|a)+\\1b$"}"#,
        ),
    ]);
    let schemas = dir
        .parse(
            r#"
[[topic]]
name = "evil"
json_schema = "evil.json"
[[topic]]
name = "ahead"
json_schema = "lookahead.json"
[[topic]]
name = "backref"
json_schema = "backref.json"
"#,
        )
        .expect("loads");
    // A pattern catastrophic for a backtracking engine runs on the linear-time one.
    let evil = schemas.for_topic("evil").expect("evil");
    let value = format!("\"{}b\"", "a".repeat(100_000));
    let started = Instant::now();
    assert!(evil.validate(value.as_bytes()).is_err());
    evil.validate(format!("\"{}\"", "a".repeat(100_000)).as_bytes())
        .expect("matches");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Lookaround and backreferences work, as ECMA-262 has them...
    let ahead = schemas.for_topic("ahead").expect("ahead");
    ahead.validate(b"\"abc1\"").expect("has a digit");
    assert!(ahead.validate(b"\"abcd\"").is_err());
    let backref = schemas.for_topic("backref").expect("backref");
    backref.validate(b"\"aaab\"").expect("matches");
    // ...and a value that makes them backtrack without end is refused at the limit.
    let started = Instant::now();
    let value = format!("\"{}\"", "a".repeat(40));
    let error = backref.validate(value.as_bytes()).expect_err("too costly");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.violations()[0].path, "");
}

#[test]
fn formats_are_asserted() {
    let dir = Dir::new(&[(
        "email.json",
        br#"{"type": "object", "properties": {"to": {"type": "string", "format": "email"}, "at": {"format": "date-time"}}}"#,
    )]);
    let schemas = dir
        .parse("[[topic]]\nname = \"mail\"\njson_schema = \"email.json\"\n")
        .expect("loads");
    let mail = schemas.for_topic("mail").expect("mail");
    mail.validate(br#"{"to": "a@example.com", "at": "2026-12-08T00:00:00Z"}"#)
        .expect("valid");
    let error = mail
        .validate(br#"{"to": "nobody"}"#)
        .expect_err("not an email");
    assert_eq!(error.violations()[0].path, "/to");
    assert!(mail.validate(br#"{"at": "yesterday"}"#).is_err());
}

#[test]
fn fuzz_parse_runs_on_anything() {
    fuzz_parse(b"");
    fuzz_parse(b"\xff\xfe");
    fuzz_parse(SHOP_TOML.as_bytes());
    fuzz_parse(b"[[topic]]\nname = \"*\"\njson_schema = \"x.json\"\n");
    fuzz_parse(format!("a = {}", "[".repeat(100_000)).as_bytes());
    fuzz_parse(format!("{} = 1", vec!["a"; 100_000].join(".")).as_bytes());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics(text in "\\PC*") {
        let _ = Schemas::parse(&text, Path::new("/nonexistent"), &topics());
    }

    #[test]
    fn parse_of_entry_like_text_never_panics(
        entries in proptest::collection::vec(
            (
                "[a-zA-Z0-9._*?é -]{0,12}",
                prop_oneof![
                    Just("json_schema = \"p.json\"".to_owned()),
                    Just("protobuf = { descriptor_set = \"o.binpb\", message = \"shop.v1.Order\" }".to_owned()),
                    "[a-z_]{1,12} = [0-9]{1,3}",
                    Just(String::new()),
                ],
            ),
            0..6,
        )
    ) {
        let text: String = entries
            .iter()
            .map(|(name, body)| format!("[[topic]]\nname = \"{name}\"\n{body}\n"))
            .collect();
        let _ = Schemas::parse(&text, Path::new("/nonexistent"), &topics());
        fuzz_parse(text.as_bytes());
    }

    #[test]
    fn bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let limits = DecodeLimits::default();
        let small = DecodeLimits { max_bytes: 64, max_json_bytes: 64 };
        for schema in [SCHEMAS.with(|s| s.0.clone()), SCHEMAS.with(|s| s.1.clone()), builtin("R2"), builtin("R4")] {
            let _ = schema.validate(&bytes);
            let _ = schema.decode(&bytes, &limits);
            let _ = schema.decode(&bytes, &small);
            let _ = schema.decode_for_filter(&bytes, &limits);
        }
    }

    #[test]
    fn order_like_bytes_never_panic(
        fields in proptest::collection::vec((1u32..12, 0u8..6, any::<u64>(), proptest::collection::vec(any::<u8>(), 0..8)), 0..12)
    ) {
        // Well-formed keys with arbitrary wire types and payloads: reaches deeper than
        // random bytes.
        let mut bytes = Vec::new();
        for (number, wire, varint, payload) in fields {
            prost::encoding::encode_varint(u64::from(number << 3 | u32::from(wire)), &mut bytes);
            match wire {
                0 => prost::encoding::encode_varint(varint, &mut bytes),
                1 => bytes.extend_from_slice(&varint.to_le_bytes()),
                2 => {
                    prost::encoding::encode_varint(payload.len() as u64, &mut bytes);
                    bytes.extend_from_slice(&payload);
                }
                5 => bytes.extend_from_slice(&(varint as u32).to_le_bytes()),
                _ => bytes.extend_from_slice(&payload),
            }
        }
        let orders = SCHEMAS.with(|s| s.0.clone());
        let limits = DecodeLimits::default();
        if orders.validate(&bytes).is_ok() {
            let canonical = orders.decode(&bytes, &limits);
            prop_assert!(canonical.is_ok(), "{:?}", canonical);
            let filter = orders.decode_for_filter(&bytes, &limits);
            prop_assert!(filter.is_ok());
        } else {
            prop_assert!(orders.decode(&bytes, &limits).is_err());
        }
    }

    #[test]
    fn json_values_never_panic(value in arbitrary_json()) {
        let payments = SCHEMAS.with(|s| s.1.clone());
        let orders = SCHEMAS.with(|s| s.0.clone());
        let _ = payments.encode_json(&value);
        if let Ok(bytes) = orders.encode_json(&value) {
            prop_assert!(orders.validate(&bytes).is_ok());
        }
        let bytes = serde_json::to_vec(&value).expect("json");
        let _ = builtin("R2").validate(&bytes);
        let decoded = payments.decode(&bytes, &DecodeLimits::default());
        prop_assert_eq!(decoded.ok(), Some(value));
    }
}

fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|n| json!(n)),
        "\\PC{0,12}".prop_map(serde_json::Value::String),
        prop_oneof![Just("id"), Just("amount"), Just("currency"), Just("items")]
            .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            proptest::collection::hash_map(
                prop_oneof![
                    Just("id".to_owned()),
                    Just("amount".to_owned()),
                    Just("currency".to_owned()),
                    Just("items".to_owned()),
                    Just("sku".to_owned()),
                    Just("quantity".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

thread_local! {
    /// (orders, payments), loaded once per test thread: proptest cases run many times.
    static SCHEMAS: (Arc<TopicSchema>, Arc<TopicSchema>) = (orders(), payments());
}
