//! A bounded waiting room for slow work (argon2 hashes, directory logins): at most
//! `max_concurrent` run at once and `queue_limit` more wait; beyond that a caller is refused
//! at once, so a slow or hung resource costs refusals (503), not unbounded memory.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Gate {
    /// Permits to run now.
    running: Arc<Semaphore>,
    /// Permits to be running or waiting: `max_concurrent + queue_limit`.
    admitted: Arc<Semaphore>,
}

/// A held place: owned, so it can move into a blocking task that outlives its caller.
pub struct Pass {
    _admitted: OwnedSemaphorePermit,
    _running: OwnedSemaphorePermit,
}

/// The waiting room was full.
#[derive(Debug)]
pub struct Full;

impl Gate {
    pub fn new(max_concurrent: usize, queue_limit: usize) -> Gate {
        Gate {
            running: Arc::new(Semaphore::new(max_concurrent)),
            admitted: Arc::new(Semaphore::new(max_concurrent.saturating_add(queue_limit))),
        }
    }

    /// Waits for a place among `max_concurrent`, or refuses at once when `queue_limit`
    /// callers already wait.
    pub async fn enter(&self) -> Result<Pass, Full> {
        let admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| Full)?;
        let running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Full)?;
        Ok(Pass {
            _admitted: admitted,
            _running: running,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_max_concurrent_queues_queue_limit_and_refuses_the_rest() {
        let gate = Arc::new(Gate::new(1, 1));
        let first = gate.enter().await.unwrap();
        // The second waits for the first's place...
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter().await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        // ...and the third finds the waiting room full.
        assert!(gate.enter().await.is_err());
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.unwrap().unwrap();
        // Every place is free again.
        let _a = gate.enter().await.unwrap();
    }
}
