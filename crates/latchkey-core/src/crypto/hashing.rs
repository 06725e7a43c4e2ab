//! Threads of their own for password hashing, one per core.
//!
//! An Argon2id verification takes a core and 19 MiB for tens of
//! milliseconds: run on the async workers it would stall every request
//! behind it, and more at once than there are cores only adds memory and
//! contention. Each hashing thread takes the next waiting job the moment it
//! is done with one, so no core idles between hashes; a semaphore in front of
//! the blocking pool cost a round of thread wake-ups between two hashes, and
//! a core stood idle meanwhile. Jobs wait in order of arrival.
//!
//! Two things keep a flood of password requests from pushing real logins
//! back: a job whose caller went away (its future dropped: the client hung
//! up) is skipped when a thread reaches it, never hashed; and at most
//! `capacity` jobs wait at once, a job beyond that is refused at once
//! ([`HashingError::Busy`]) rather than queued behind work nobody can do in
//! time.

use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};

/// A job's place in the queue.
const WAITING: u8 = 0;
/// A thread took it: it runs.
const TAKEN: u8 = 1;
/// Its caller went away first: it never runs.
const CANCELLED: u8 = 2;

struct Job {
    state: Arc<AtomicU8>,
    work: Box<dyn FnOnce() + Send>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Jobs waiting for a thread (taken and cancelled ones not counted).
    waiting: AtomicUsize,
    /// Jobs a thread has started.
    started: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HashingError {
    /// As many jobs wait as the queue holds: try again shortly.
    #[error("the password hashing queue is full")]
    Busy,
    /// The hashing threads are gone.
    #[error("the hashing threads are gone")]
    Gone,
}

#[derive(Debug)]
pub struct HashingThreads {
    jobs: Mutex<Sender<Job>>,
    counts: Arc<Counts>,
    capacity: usize,
}

/// Held by the caller while its job waits: dropped before a thread takes
/// the job, it cancels it.
struct Ticket {
    state: Arc<AtomicU8>,
    counts: Arc<Counts>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self
            .state
            .compare_exchange(WAITING, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.counts.waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl HashingThreads {
    /// Starts `threads` (at least one) hashing threads, with room for
    /// `capacity` (at least one) waiting jobs; they end when this is dropped.
    pub fn start(threads: usize, capacity: usize) -> std::io::Result<Self> {
        let (jobs, waiting) = channel::<Job>();
        let waiting = Arc::new(Mutex::new(waiting));
        let counts = Arc::new(Counts::default());
        for i in 0..threads.max(1) {
            let waiting = Arc::clone(&waiting);
            let counts = Arc::clone(&counts);
            std::thread::Builder::new()
                .name(format!("latchkey-hash-{i}"))
                .spawn(move || work(&waiting, &counts))?;
        }
        Ok(Self {
            jobs: Mutex::new(jobs),
            counts,
            capacity: capacity.max(1),
        })
    }

    /// Runs `f` on a hashing thread, refused with [`HashingError::Busy`]
    /// when the queue is full. Dropping the returned future before a thread
    /// takes the job cancels it.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        let waiting = self.counts.waiting.fetch_add(1, Ordering::AcqRel);
        if waiting >= self.capacity {
            self.counts.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(HashingError::Busy);
        }
        self.queue(f).await
    }

    /// Runs `f` on a hashing thread whatever the queue holds (for work that
    /// must not be refused, such as applying a tenant file). Dropping the
    /// returned future before a thread takes the job cancels it.
    pub async fn run_unbounded<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        self.counts.waiting.fetch_add(1, Ordering::AcqRel);
        self.queue(f).await
    }

    /// Queues a job already counted as waiting, and waits for its answer.
    async fn queue<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        let state = Arc::new(AtomicU8::new(WAITING));
        let _ticket = Ticket {
            state: Arc::clone(&state),
            counts: Arc::clone(&self.counts),
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job = Job {
            state,
            work: Box::new(move || {
                let _ = answer.send(f());
            }),
        };
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job)
            .map_err(|_| HashingError::Gone)?;
        answered.await.map_err(|_| HashingError::Gone)
    }

    /// How many jobs the threads have started since they began (cancelled
    /// ones never start).
    pub fn jobs_started(&self) -> u64 {
        self.counts.started.load(Ordering::Acquire)
    }

    /// How many jobs wait for a thread now.
    pub fn waiting(&self) -> usize {
        self.counts.waiting.load(Ordering::Acquire)
    }
}

/// A hashing thread: the next job, until the sender is gone. A job whose
/// caller went away is dropped without running.
fn work(waiting: &Mutex<Receiver<Job>>, counts: &Counts) {
    loop {
        let job = {
            let waiting = waiting.lock().unwrap_or_else(PoisonError::into_inner);
            match waiting.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let taken = job
            .state
            .compare_exchange(WAITING, TAKEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if taken {
            counts.waiting.fetch_sub(1, Ordering::AcqRel);
            // Counted before it runs, so whoever reads the answer sees it.
            counts.started.fetch_add(1, Ordering::AcqRel);
            (job.work)();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn more_jobs_than_threads_all_run_on_the_hashing_threads() {
        let threads = Arc::new(HashingThreads::start(2, 64).unwrap());
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
        assert_eq!(threads.jobs_started(), 8);
    }

    /// Occupies the only thread until the returned sender is used.
    async fn occupy(threads: &Arc<HashingThreads>) -> std::sync::mpsc::Sender<()> {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (started, has_started) = tokio::sync::oneshot::channel::<()>();
        let busy = Arc::clone(threads);
        tokio::spawn(async move {
            busy.run(move || {
                let _ = started.send(());
                let _ = released.recv();
            })
            .await
        });
        has_started.await.unwrap();
        release
    }

    /// Polls `fut` once (enough to queue its job), then gives it back.
    async fn poll_once<F: std::future::Future + Unpin>(fut: &mut F) {
        tokio::select! {
            biased;
            _ = fut => panic!("the job cannot have run: the thread is busy"),
            () = std::future::ready(()) => {}
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_whose_caller_went_away_is_not_run() {
        let threads = Arc::new(HashingThreads::start(1, 8).unwrap());
        let release = occupy(&threads).await;
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let mut abandoned = Box::pin(threads.run(move || flag.store(true, Ordering::SeqCst)));
        poll_once(&mut abandoned).await;
        assert_eq!(threads.waiting(), 1);
        drop(abandoned);
        assert_eq!(threads.waiting(), 0, "a cancelled job frees its place");
        release.send(()).unwrap();
        // A job queued after it runs, so the thread has passed the other.
        assert_eq!(threads.run(|| 7).await, Ok(7));
        assert!(!ran.load(Ordering::SeqCst), "the abandoned job ran");
        assert_eq!(threads.jobs_started(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once() {
        let threads = Arc::new(HashingThreads::start(1, 2).unwrap());
        let release = occupy(&threads).await;
        let mut first = Box::pin(threads.run(|| 1));
        let mut second = Box::pin(threads.run(|| 2));
        poll_once(&mut first).await;
        poll_once(&mut second).await;
        assert_eq!(threads.run(|| 3).await, Err(HashingError::Busy));
        let mut unbounded = Box::pin(threads.run_unbounded(|| 4));
        poll_once(&mut unbounded).await;
        release.send(()).unwrap();
        assert_eq!(first.await, Ok(1));
        assert_eq!(second.await, Ok(2));
        assert_eq!(unbounded.await, Ok(4));
        assert_eq!(threads.run(|| 5).await, Ok(5), "room again");
    }
}
