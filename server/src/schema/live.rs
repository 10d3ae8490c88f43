//! The schemas in force: read by every Publish and by each stream when it opens, swapped
//! whole when SIGHUP re-reads the file. A file that no longer loads leaves the schemas in
//! force as they were (and says why in the log), as a TLS reload does.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{SchemaFileError, Schemas, ServerTopics};
use crate::signals::Hangups;

/// See the module.
pub struct Live {
    current: RwLock<Arc<Schemas>>,
    file: Option<PathBuf>,
    topics: ServerTopics,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("file", &self.file)
            .field("schemas", &self.current().len())
            .finish()
    }
}

impl Live {
    /// The server's schemas: its own topics' and, with `file`, those it declares.
    pub fn load(file: Option<PathBuf>, topics: ServerTopics) -> Result<Self, SchemaFileError> {
        let schemas = match &file {
            Some(path) => Schemas::load(path, &topics)?,
            None => Schemas::builtin(&topics),
        };
        Ok(Self {
            current: RwLock::new(Arc::new(schemas)),
            file,
            topics,
        })
    }

    /// The schemas in force now.
    pub fn current(&self) -> Arc<Schemas> {
        match self.current.read() {
            Ok(current) => current.clone(),
            // A panic while swapping cannot leave a half-written Arc: take it as it is.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The schema file, if any.
    pub fn file(&self) -> Option<&std::path::Path> {
        self.file.as_deref()
    }

    /// Re-reads the file; on an error the schemas in force stay.
    pub fn reload(&self) -> Result<usize, SchemaFileError> {
        let Some(path) = &self.file else {
            return Ok(self.current().len());
        };
        let schemas = Arc::new(Schemas::load(path, &self.topics)?);
        let count = schemas.len();
        match self.current.write() {
            Ok(mut current) => *current = schemas,
            Err(poisoned) => *poisoned.into_inner() = schemas,
        }
        Ok(count)
    }

    /// With a file: re-reads it at every SIGHUP until `shutdown`.
    pub fn reload_on_hangup(self: &Arc<Self>, tasks: &TaskTracker, shutdown: CancellationToken) {
        if self.file.is_none() {
            return;
        }
        let live = self.clone();
        let mut hangups = Hangups::register("the schema file is read at start only");
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = hangups.next() => match live.reload() {
                        Ok(count) => tracing::info!(schemas = count, "schema file reloaded on SIGHUP"),
                        Err(e) => tracing::warn!("schema file reload failed; the previous schemas stay in force: {e}"),
                    },
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn topics() -> ServerTopics {
        ServerTopics {
            r2: "R2".into(),
            r3: "R3".into(),
            r4: "R4".into(),
        }
    }

    fn write_file(dir: &Path, topic: &str) -> PathBuf {
        let schema = dir.join("s.schema.json");
        std::fs::write(&schema, r#"{"type": "object"}"#).expect("schema written");
        let file = dir.join("schemas.toml");
        std::fs::write(
            &file,
            format!("[[topic]]\nname = \"{topic}\"\njson_schema = \"s.schema.json\"\n"),
        )
        .expect("file written");
        file
    }

    #[test]
    fn a_reload_swaps_the_schemas_and_a_broken_file_keeps_them() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = write_file(dir.path(), "orders");
        let live = Live::load(Some(file.clone()), topics()).expect("loads");
        let before = live.current();
        assert!(before.for_topic("orders").is_some());
        assert!(
            before.for_topic("R2").is_some(),
            "built-ins are always there"
        );

        write_file(dir.path(), "payments");
        live.reload().expect("reloads");
        let after = live.current();
        assert!(after.for_topic("orders").is_none());
        assert!(after.for_topic("payments").is_some());
        // What a stream took when it opened is unchanged by the reload.
        assert!(before.for_topic("orders").is_some());

        std::fs::write(&file, "[[topic]]\nname = ").expect("broken");
        assert!(live.reload().is_err());
        assert!(
            live.current().for_topic("payments").is_some(),
            "still in force"
        );
    }

    #[test]
    fn without_a_file_only_the_built_ins_and_reload_changes_nothing() {
        let live = Live::load(None, topics()).expect("built-ins");
        assert_eq!(
            live.reload().expect("nothing to read"),
            live.current().len()
        );
        assert!(live.current().for_topic("R4").is_some());
        assert!(live.current().for_topic("R1").is_none(), "R1 stays untyped");
    }
}
