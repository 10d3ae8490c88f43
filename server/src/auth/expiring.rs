//! A response stream that ends with UNAUTHENTICATED when the caller's credential expires
//! (a JWT's `exp`): a long Subscribe must not outlive the token that opened it.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use futures::Stream;
use tokio::time::{Instant, Sleep};
use tonic::Status;

use super::Principal;

/// `inner`, cut off when the principal's credential expires.
pub struct Expiring<S> {
    inner: S,
    expiry: Option<Pin<Box<Sleep>>>,
    done: bool,
}

impl<S> Expiring<S> {
    /// Wraps `inner` for `principal`; a credential without expiry changes nothing.
    pub fn new(inner: S, principal: &Principal) -> Self {
        // An expiry too far away for the clock to add is, for a stream, never.
        let expiry = principal.expires().and_then(|at| {
            let left = at.duration_since(SystemTime::now()).unwrap_or_default();
            let deadline = Instant::now().checked_add(left)?;
            Some(Box::pin(tokio::time::sleep_until(deadline)))
        });
        Self {
            inner,
            expiry,
            done: false,
        }
    }
}

impl<S, T> Stream for Expiring<S>
where
    S: Stream<Item = Result<T, Status>> + Unpin,
{
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(expiry) = self.expiry.as_mut()
            && expiry.as_mut().poll(cx).is_ready()
        {
            self.done = true;
            return Poll::Ready(Some(Err(Status::unauthenticated(
                "the token has expired: reconnect with a fresh one",
            ))));
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}
