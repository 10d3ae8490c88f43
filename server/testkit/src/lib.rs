//! The test harness shared by the server's and the CLI's integration tests and benchmarks.
//! Depending on it turns on the server's `test-hooks` feature (worker abandon, embedded
//! fault injection), which the release binary never has.
