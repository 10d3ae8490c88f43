//! Waiting for conditions instead of sleeping: every wait is bounded, and a wait that runs
//! out fails the test with what it waited for and, where the condition says, what it last
//! saw.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// The pause between two checks of a condition.
pub const POLL_EVERY: Duration = Duration::from_millis(50);

/// What a polled condition returns: whether it holds, with a value if it has one.
///
/// - `bool`: holds when `true`;
/// - `Option<T>`: holds when `Some(value)`, which the wait returns;
/// - `Result<T, E>`: holds when `Ok(value)`; an `Err` says what was seen instead, and the
///   last one is shown if the wait runs out.
pub trait Condition {
    /// What a wait for the condition returns once it holds.
    type Output;
    /// `Ok` when the condition holds; otherwise what was seen, if anything is to be said.
    fn check(self) -> Result<Self::Output, Option<String>>;
}

impl Condition for bool {
    type Output = ();
    fn check(self) -> Result<(), Option<String>> {
        if self { Ok(()) } else { Err(None) }
    }
}

impl<T> Condition for Option<T> {
    type Output = T;
    fn check(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: Debug> Condition for Result<T, E> {
    type Output = T;
    fn check(self) -> Result<T, Option<String>> {
        self.map_err(|seen| Some(format!("{seen:?}")))
    }
}

/// Checks `condition` every [`POLL_EVERY`] until it holds, for at most `timeout` (each check
/// included: one that is still running at the deadline is abandoned). Returns its value, or
/// on timeout what the last check said it saw (`Err(None)` if it said nothing).
pub async fn poll_for<C: Condition>(
    timeout: Duration,
    mut condition: impl AsyncFnMut() -> C,
) -> Result<C::Output, Option<String>> {
    let deadline = Instant::now() + timeout;
    let mut last_seen = None;
    loop {
        // A future that is ready is taken even at the deadline: the last check counts.
        match tokio::time::timeout_at(deadline, condition()).await {
            Ok(outcome) => match outcome.check() {
                Ok(value) => return Ok(value),
                Err(seen) => last_seen = seen.or(last_seen),
            },
            Err(_) => return Err(last_seen),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(last_seen);
        }
        tokio::time::sleep(POLL_EVERY.min(deadline - now)).await;
    }
}

/// Checks `condition` every [`POLL_EVERY`] until it holds and returns its value; panics
/// with `what` (and what the condition last saw) if it does not hold within `timeout`.
///
/// ```ignore
/// let status = eventually(Duration::from_secs(30), "events acknowledged", async || {
///     let status = status(&mut client).await;
///     (status.events_sent >= 20).then_some(status)
/// })
/// .await;
/// ```
pub async fn eventually<C: Condition>(
    timeout: Duration,
    what: &str,
    condition: impl AsyncFnMut() -> C,
) -> C::Output {
    match poll_for(timeout, condition).await {
        Ok(value) => value,
        Err(Some(seen)) => panic!("{what}: not within {timeout:?}; last seen: {seen}"),
        Err(None) => panic!("{what}: not within {timeout:?}"),
    }
}

/// Polls `probe` every [`POLL_EVERY`] until its value has stayed the same for `quiet`, and
/// returns that value; panics with `what` if it keeps changing for `timeout`. For "the
/// count stopped growing" after something was told to stop.
pub async fn settled<T: PartialEq + Debug>(
    timeout: Duration,
    quiet: Duration,
    what: &str,
    mut probe: impl AsyncFnMut() -> T,
) -> T {
    let deadline = Instant::now() + timeout;
    let mut last = within(timeout, what, probe()).await;
    let mut since = Instant::now();
    loop {
        if since.elapsed() >= quiet {
            return last;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still changing after {timeout:?}; last seen: {last:?}"
        );
        tokio::time::sleep(POLL_EVERY).await;
        let value = within(
            deadline.saturating_duration_since(Instant::now()),
            what,
            probe(),
        )
        .await;
        if value != last {
            (last, since) = (value, Instant::now());
        }
    }
}

/// Awaits `future` for at most `timeout`; panics with `what` if it is not done by then.
/// For every await in a test that could otherwise hang (the next message of a stream, a
/// process exiting, a server stopping).
pub async fn within<F: Future>(timeout: Duration, what: &str, future: F) -> F::Output {
    match tokio::time::timeout(timeout, future).await {
        Ok(output) => output,
        Err(_) => panic!("{what}: not within {timeout:?}"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn eventually_returns_the_value_once_the_condition_holds() {
        let calls = AtomicU32::new(0);
        let value = eventually(Duration::from_secs(5), "three calls", async || {
            let n = calls.fetch_add(1, Ordering::Relaxed) + 1;
            (n >= 3).then_some(n)
        })
        .await;
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn poll_for_gives_up_with_what_it_last_saw() {
        let calls = AtomicU32::new(0);
        let outcome: Result<(), _> = poll_for(Duration::from_millis(200), async || {
            Err(calls.fetch_add(1, Ordering::Relaxed))
        })
        .await;
        let seen = outcome.expect_err("never holds").expect("a last value");
        assert_eq!(seen, (calls.load(Ordering::Relaxed) - 1).to_string());
        assert!(calls.load(Ordering::Relaxed) >= 2, "polled more than once");
    }

    #[tokio::test]
    async fn poll_for_abandons_a_check_still_running_at_the_deadline() {
        let outcome = poll_for(Duration::from_millis(100), async || {
            std::future::pending::<bool>().await
        })
        .await;
        assert_eq!(outcome, Err(None));
    }

    #[tokio::test]
    #[should_panic(expected = "the thing: not within")]
    async fn eventually_panics_with_what_it_waited_for() {
        eventually(Duration::from_millis(100), "the thing", async || false).await;
    }

    #[tokio::test]
    async fn settled_returns_the_value_once_it_stops_changing() {
        let calls = AtomicU32::new(0);
        let value = settled(
            Duration::from_secs(5),
            Duration::from_millis(150),
            "a count that stops at 5",
            async || calls.fetch_add(1, Ordering::Relaxed).min(5),
        )
        .await;
        assert_eq!(value, 5);
    }

    #[tokio::test]
    #[should_panic(expected = "slow: not within")]
    async fn within_panics_when_the_future_is_late() {
        within(
            Duration::from_millis(50),
            "slow",
            std::future::pending::<()>(),
        )
        .await;
    }
}
