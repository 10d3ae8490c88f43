//! Ctrl-C: a command waiting on the server stops at once with [`Exit::Interrupted`]
//! (130) and prints nothing more (`subscribe`, `stats`, `streamgate-bench`).
//!
//! `streamgate consume` ends with the same [`Failure::interrupted`], but waits for SIGINT
//! and SIGTERM itself (its `Interrupt`): it must first end its stream so that the server
//! commits what was acknowledged, and a second signal stops a running `--exec` command.
//!
//! [`Exit::Interrupted`]: crate::Exit::Interrupted

use crate::Failure;

/// `future`'s output, or [`Failure::interrupted`] if Ctrl-C comes first (then `future` is
/// dropped where it waited).
pub async fn interruptible<F: Future>(future: F) -> Result<F::Output, Failure> {
    tokio::select! {
        output = future => Ok(output),
        _ = tokio::signal::ctrl_c() => Err(Failure::interrupted()),
    }
}
