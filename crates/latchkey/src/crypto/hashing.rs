//! Threads of their own for password hashing, one per core.
//!
//! An Argon2id verification takes a core and 19 MiB for tens of
//! milliseconds: run on the async workers it would stall every request
//! behind it, and more at once than there are cores only adds memory and
//! contention. Each hashing thread takes the next waiting job the moment it
//! is done with one, so no core idles between hashes; a semaphore in front of
//! the blocking pool cost a round of thread wake-ups between two hashes, and
//! a core stood idle meanwhile. Jobs wait in order of arrival.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};

type Job = Box<dyn FnOnce() + Send>;

#[derive(Debug)]
pub struct HashingThreads {
    jobs: Mutex<Sender<Job>>,
}

impl HashingThreads {
    /// Starts `threads` (at least one) hashing threads; they end when this is
    /// dropped.
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let (jobs, waiting) = channel::<Job>();
        let waiting = Arc::new(Mutex::new(waiting));
        for i in 0..threads.max(1) {
            let waiting = Arc::clone(&waiting);
            std::thread::Builder::new()
                .name(format!("latchkey-hash-{i}"))
                .spawn(move || work(&waiting))?;
        }
        Ok(Self {
            jobs: Mutex::new(jobs),
        })
    }

    /// Runs `f` on a hashing thread; `None` if the threads are gone.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = answer.send(f());
        });
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job)
            .ok()?;
        answered.await.ok()
    }
}

/// A hashing thread: the next job, until the sender is gone.
fn work(waiting: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let waiting = waiting.lock().unwrap_or_else(PoisonError::into_inner);
            match waiting.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        job();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn more_jobs_than_threads_all_run_on_the_hashing_threads() {
        let threads = Arc::new(HashingThreads::start(2).unwrap());
        let mut waiting = Vec::new();
        for i in 0..8u64 {
            let threads = Arc::clone(&threads);
            waiting.push(tokio::spawn(async move {
                threads
                    .run(move || (i * i, std::thread::current().name().map(str::to_string)))
                    .await
            }));
        }
        for (i, job) in waiting.into_iter().enumerate() {
            let (square, name) = job.await.unwrap().unwrap();
            assert_eq!(square, (i * i) as u64);
            assert!(name.unwrap().starts_with("latchkey-hash-"));
        }
    }
}
