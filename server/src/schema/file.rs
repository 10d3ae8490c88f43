//! The schema file: TOML `[[topic]]` entries, each a name or glob and one schema.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use prost_reflect::DescriptorPool;
use serde::Deserialize;

use super::json_schema::{Invalid, JsonSchema};
use super::limits::{self, bound_message, quote_name};
use super::protobuf::{self, ProtobufSchema};
use super::{Kind, Schemas, ServerTopics, TopicSchema};

/// How errors name the file when [`Schemas::parse`] is given text.
pub(super) const TEXT_LABEL: &str = "<schemas>";

/// The rule every entry's name follows, as errors say it.
const NAME_RULE: &str = "a name is 1 to 249 characters of [a-zA-Z0-9._-] and `*` (any run \
     of characters), and is not \".\" or \"..\"";

/// The bounds of one load (see [`limits`]); tests lower them.
#[derive(Debug, Clone, Copy)]
pub(super) struct FileLimits {
    pub(super) file_bytes: u64,
    pub(super) entries: usize,
    pub(super) schema_bytes: u64,
    pub(super) total_bytes: u64,
}

impl FileLimits {
    pub(super) const DEFAULT: Self = Self {
        file_bytes: limits::MAX_SCHEMA_FILE_BYTES,
        entries: limits::MAX_ENTRIES,
        schema_bytes: limits::MAX_SCHEMA_BYTES,
        total_bytes: limits::MAX_TOTAL_SCHEMA_BYTES,
    };
}

/// Why a schema file was refused. Each names the file (`<schemas>` for
/// [`Schemas::parse`]) and, for an entry, its position (from 1) and name.
#[derive(Debug, thiserror::Error)]
pub enum SchemaFileError {
    /// The file could not be read.
    #[error("schema file {file}: cannot read it: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file is larger than 1 MiB.
    #[error("schema file {file}: larger than the {limit} bytes a schema file may be")]
    TooLarge {
        /// The file.
        file: String,
        /// The limit.
        limit: u64,
    },
    /// The file is not UTF-8.
    #[error("schema file {file}: not UTF-8 text (bad byte at offset {offset})")]
    NotUtf8 {
        /// The file.
        file: String,
        /// Where the first bad byte is.
        offset: usize,
    },
    /// The file is not TOML.
    #[error("schema file {file}, line {line}, column {column}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// Line, from 1.
        line: usize,
        /// Column (characters), from 1.
        column: usize,
        /// What the TOML parser said.
        message: String,
    },
    /// TOML, but not a list of `[[topic]]` entries.
    #[error("schema file {file}: {message}")]
    Structure {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// More than 1000 entries.
    #[error("schema file {file}: {count} entries, more than the {limit} allowed")]
    TooManyEntries {
        /// The file.
        file: String,
        /// How many there are.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// One entry is wrong.
    #[error("schema file {file}, entry #{index} ({}): {problem}", name_label(.name.as_deref()))]
    Entry {
        /// The file.
        file: String,
        /// The entry's position, from 1.
        index: usize,
        /// Its name, if it has one that is a string (cut to 64 characters).
        name: Option<String>,
        /// What is wrong with it (boxed: the other errors are small).
        problem: Box<EntryProblem>,
    },
}

impl SchemaFileError {
    /// The entry problem, for an error about one entry.
    pub fn entry_problem(&self) -> Option<&EntryProblem> {
        match self {
            Self::Entry { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

fn name_label(name: Option<&str>) -> String {
    name.map_or_else(|| "no name".to_owned(), quote_name)
}

fn pointer_label(pointer: &str) -> &str {
    if pointer.is_empty() {
        "the root"
    } else {
        pointer
    }
}

/// What is wrong with one entry.
#[derive(Debug, thiserror::Error)]
pub enum EntryProblem {
    /// Not an entry: an unknown key, a missing `name`, a value of the wrong type.
    #[error("{0}")]
    Invalid(String),
    /// The name is not a topic name or glob.
    #[error("invalid topic name or glob {name}: {reason}; {NAME_RULE}")]
    BadName {
        /// The name (quoted, cut to 64 characters).
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Neither `protobuf` nor `json_schema`.
    #[error("has neither `protobuf` nor `json_schema`: exactly one is needed")]
    NoSchema,
    /// Both `protobuf` and `json_schema`.
    #[error("has both `protobuf` and `json_schema`: exactly one is allowed")]
    BothSchemas,
    /// Names a topic the server writes itself.
    #[error(
        "topic {topic} is written by the server itself and keeps its built-in schema; remove \
         this entry"
    )]
    BuiltIn {
        /// The topic (quoted).
        topic: String,
    },
    /// The same name as an earlier entry (which would always win).
    #[error("repeats the name of entry #{first}")]
    Duplicate {
        /// The earlier entry's position.
        first: usize,
    },
    /// The referenced file could not be read (missing, a directory, no permission…).
    #[error("cannot read {}: {source}", .path.display())]
    ReadSchema {
        /// The file, as resolved from the schema file's directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The referenced file is larger than 16 MiB.
    #[error("{} is larger than the {limit} bytes a schema may be", .path.display())]
    SchemaTooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// The referenced files add up to more than 256 MiB.
    #[error("reading {} takes the schemas past {limit} bytes in all", .path.display())]
    TotalTooLarge {
        /// The file that went past the limit.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// Not a descriptor set.
    #[error(
        "{} is not a Protobuf descriptor set (as `buf build -o` or `protoc \
         --descriptor_set_out --include_imports` write one): {reason}",
        .path.display()
    )]
    NotDescriptorSet {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// The message is not in the descriptor set.
    #[error("message {message} is not in {}; {hint}", .path.display())]
    MessageNotFound {
        /// The descriptor set.
        path: PathBuf,
        /// The name given (quoted, cut to 64 characters).
        message: String,
        /// A near name, or the messages the set has.
        hint: String,
    },
    /// The JSON Schema document is not JSON.
    #[error("{} is not JSON: {reason}", .path.display())]
    NotJson {
        /// The file.
        path: PathBuf,
        /// What the parser said (with line and column).
        reason: String,
    },
    /// The JSON Schema document does not compile: not a valid schema, an unresolvable
    /// `$ref` (remote references are never fetched), a pattern the regex engine refuses.
    #[error("{} is not a valid JSON Schema: at {}: {reason}", .path.display(), pointer_label(.pointer))]
    InvalidJsonSchema {
        /// The file.
        path: PathBuf,
        /// Where in the document, as a JSON pointer (empty for the root).
        pointer: String,
        /// What is wrong.
        reason: String,
    },
}

/// A `[[topic]]` entry as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryToml {
    name: String,
    protobuf: Option<ProtobufToml>,
    json_schema: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProtobufToml {
    descriptor_set: String,
    message: String,
}

/// Reads the file at `path` and parses it, relative paths from its directory.
pub(super) fn load(
    path: &Path,
    topics: &ServerTopics,
    limits: &FileLimits,
) -> Result<Schemas, SchemaFileError> {
    let file = path.display().to_string();
    let bytes = read_limited(path, limits.file_bytes).map_err(|e| match e {
        ReadError::Io(source) => SchemaFileError::Read {
            file: file.clone(),
            source,
        },
        ReadError::TooLarge => SchemaFileError::TooLarge {
            file: file.clone(),
            limit: limits.file_bytes,
        },
    })?;
    let text = String::from_utf8(bytes).map_err(|e| SchemaFileError::NotUtf8 {
        file: file.clone(),
        offset: e.utf8_error().valid_up_to(),
    })?;
    let base_dir = path.parent().unwrap_or(Path::new(""));
    parse(&text, base_dir, &file, topics, limits)
}

/// Parses a schema file's text; `file` names it in errors.
pub(super) fn parse(
    text: &str,
    base_dir: &Path,
    file: &str,
    topics: &ServerTopics,
    limits: &FileLimits,
) -> Result<Schemas, SchemaFileError> {
    let file_error = |message: String| SchemaFileError::Structure {
        file: file.to_owned(),
        message,
    };
    if text.len() as u64 > limits.file_bytes {
        return Err(SchemaFileError::TooLarge {
            file: file.to_owned(),
            limit: limits.file_bytes,
        });
    }
    let mut table: toml::Table = toml::from_str(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map_or((1, 1), |span| line_column(text, span.start));
        SchemaFileError::Syntax {
            file: file.to_owned(),
            line,
            column,
            message: bound_message(e.message().trim()),
        }
    })?;
    let entries = match table.remove("topic") {
        None => Vec::new(),
        Some(toml::Value::Array(entries)) => entries,
        Some(_) => {
            return Err(file_error(
                "`topic` must be a list of [[topic]] tables".to_owned(),
            ));
        }
    };
    if let Some(key) = table.keys().next() {
        return Err(file_error(format!(
            "unknown key {}: a schema file holds only [[topic]] entries",
            quote_name(key)
        )));
    }
    if entries.len() > limits.entries {
        return Err(SchemaFileError::TooManyEntries {
            file: file.to_owned(),
            count: entries.len(),
            limit: limits.entries,
        });
    }

    let mut schemas = Schemas::builtin(topics);
    let builtin = [&topics.r2, &topics.r3, &topics.r4];
    let mut loader = Loader {
        base_dir,
        limits,
        total: 0,
        pools: HashMap::new(),
        json: HashMap::new(),
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let index = i + 1;
        let name = entry
            .get("name")
            .and_then(toml::Value::as_str)
            .map(|n| limits::truncate_chars(n, limits::MAX_QUOTED_CHARS));
        let error = |problem| SchemaFileError::Entry {
            file: file.to_owned(),
            index,
            name: name.clone(),
            problem: Box::new(problem),
        };
        if !entry.is_table() {
            return Err(error(EntryProblem::Invalid(
                "not a table: write entries as [[topic]]".to_owned(),
            )));
        }
        let entry: EntryToml = entry.try_into().map_err(|e: toml::de::Error| {
            error(EntryProblem::Invalid(bound_message(e.message().trim())))
        })?;
        check_name(&entry.name).map_err(|reason| {
            error(EntryProblem::BadName {
                name: quote_name(&entry.name),
                reason,
            })
        })?;
        if builtin.iter().any(|topic| **topic == entry.name) {
            return Err(error(EntryProblem::BuiltIn {
                topic: quote_name(&entry.name),
            }));
        }
        if let Some(&first) = seen.get(&entry.name) {
            return Err(error(EntryProblem::Duplicate { first }));
        }
        seen.insert(entry.name.clone(), index);
        let (source, kind) = match (entry.protobuf, entry.json_schema) {
            (None, None) => return Err(error(EntryProblem::NoSchema)),
            (Some(_), Some(_)) => return Err(error(EntryProblem::BothSchemas)),
            (Some(spec), None) => loader.protobuf(&spec).map_err(error)?,
            (None, Some(path)) => loader.json_schema(&path).map_err(error)?,
        };
        schemas.push(TopicSchema {
            pattern: entry.name,
            source: source.display().to_string(),
            kind,
        });
    }
    Ok(schemas)
}

/// Line and column (from 1, in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut at = offset.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// Checks a topic name or glob.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".to_owned());
    }
    let chars = name.chars().count();
    if chars > limits::MAX_NAME_CHARS {
        return Err(format!("it is {chars} characters long"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '*')))
    {
        return Err(format!("it contains {bad:?}"));
    }
    if name == "." || name == ".." {
        return Err("it is reserved".to_owned());
    }
    Ok(())
}

/// Reads the schema documents entries name, once each.
struct Loader<'a> {
    base_dir: &'a Path,
    limits: &'a FileLimits,
    total: u64,
    pools: HashMap<PathBuf, DescriptorPool>,
    json: HashMap<PathBuf, Arc<JsonSchema>>,
}

impl Loader<'_> {
    fn read(&mut self, path: &Path) -> Result<Vec<u8>, EntryProblem> {
        let bytes = read_limited(path, self.limits.schema_bytes).map_err(|e| match e {
            ReadError::Io(source) => EntryProblem::ReadSchema {
                path: path.to_owned(),
                source,
            },
            ReadError::TooLarge => EntryProblem::SchemaTooLarge {
                path: path.to_owned(),
                limit: self.limits.schema_bytes,
            },
        })?;
        self.total = self.total.saturating_add(bytes.len() as u64);
        if self.total > self.limits.total_bytes {
            return Err(EntryProblem::TotalTooLarge {
                path: path.to_owned(),
                limit: self.limits.total_bytes,
            });
        }
        Ok(bytes)
    }

    fn resolve(&self, key: &str, relative: &str) -> Result<PathBuf, EntryProblem> {
        if relative.is_empty() {
            return Err(EntryProblem::Invalid(format!("`{key}` is empty")));
        }
        Ok(self.base_dir.join(relative))
    }

    fn protobuf(&mut self, spec: &ProtobufToml) -> Result<(PathBuf, Kind), EntryProblem> {
        let path = self.resolve("descriptor_set", &spec.descriptor_set)?;
        let pool = match self.pools.get(&path) {
            Some(pool) => pool.clone(),
            None => {
                let bytes = self.read(&path)?;
                let pool = protobuf::pool_from_bytes(&bytes).map_err(|reason| {
                    EntryProblem::NotDescriptorSet {
                        path: path.clone(),
                        reason,
                    }
                })?;
                self.pools.insert(path.clone(), pool.clone());
                pool
            }
        };
        match ProtobufSchema::new(&pool, &spec.message) {
            Some(schema) => Ok((path, Kind::Protobuf(schema))),
            None => Err(EntryProblem::MessageNotFound {
                message: quote_name(&spec.message),
                hint: protobuf::missing_message_hint(&pool, &spec.message),
                path,
            }),
        }
    }

    fn json_schema(&mut self, relative: &str) -> Result<(PathBuf, Kind), EntryProblem> {
        let path = self.resolve("json_schema", relative)?;
        if let Some(schema) = self.json.get(&path) {
            return Ok((path, Kind::Json(Arc::clone(schema))));
        }
        let bytes = self.read(&path)?;
        let text = String::from_utf8(bytes).map_err(|e| EntryProblem::NotJson {
            path: path.clone(),
            reason: format!(
                "not UTF-8 (bad byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        })?;
        let schema = JsonSchema::compile(&text).map_err(|e| match e {
            Invalid::NotJson(reason) => EntryProblem::NotJson {
                path: path.clone(),
                reason,
            },
            Invalid::Schema { pointer, reason } => EntryProblem::InvalidJsonSchema {
                path: path.clone(),
                pointer,
                reason,
            },
        })?;
        let schema = Arc::new(schema);
        self.json.insert(path.clone(), Arc::clone(&schema));
        Ok((path, Kind::Json(schema)))
    }
}

enum ReadError {
    Io(io::Error),
    TooLarge,
}

/// Reads at most `limit` bytes of `path`: a larger file is refused without reading more than
/// that (a wrong path to a disk image or `/dev/zero` fails fast).
fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = File::open(path).map_err(ReadError::Io)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}

/// A topic glob: `*` matches any run of characters (none included); nothing else is
/// special.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Glob(String);

impl Glob {
    pub(super) fn new(pattern: &str) -> Self {
        Self(pattern.to_owned())
    }

    /// Whether `name` matches the whole pattern.
    pub(super) fn matches(&self, name: &str) -> bool {
        let mut parts = self.0.split('*');
        // `split` always yields at least one part.
        let first = parts.next().unwrap_or_default();
        let Some(mut rest) = name.strip_prefix(first) else {
            return false;
        };
        let mut parts: Vec<&str> = parts.collect();
        let Some(last) = parts.pop() else {
            return rest.is_empty(); // no `*`: an exact name
        };
        // Each middle part at its first occurrence: the earliest match leaves the most room
        // for the rest, so greedy-leftmost is exact for `*`-only patterns.
        for part in parts {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        rest.ends_with(last)
    }
}
