//! Helpers shared by the node tests.

use std::time::Duration;

/// Polls `f` every 20 ms until it holds, for at most `limit` (a bound on a wait, not a timing
/// assertion), and returns its last answer.
pub(crate) async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}
