//! Windowed page-visit counts (the seed's Kafka Streams function, done properly).
//!
//! - [`window`]: the pure windowing core (tumbling/hopping windows, event time, grace, the
//!   duration filter, wall-clock advance for quiet partitions).
//! - [`worker`]: consumes R2 in a group and writes counts to R4, exactly once (transactions).
//! - [`record`]: the R4 record format.
//! - [`committed`]: the rule "the best R4 record within the committed offsets", shared by
//!   the worker's restore and the hub.
//! - [`hub`]: reads R4, sums partitions, and fans snapshots out to WatchPageStats watchers.

pub mod committed;
pub mod hub;
pub mod record;
pub mod window;
pub mod worker;

pub use hub::{Hub, HubSettings, Snapshot, WindowTotals, current_window, rolling_counts};
pub use window::WindowSpec;
#[cfg(feature = "test-hooks")]
pub use worker::Abandon;
pub use worker::{Worker, WorkerCounters, WorkerSettings};
