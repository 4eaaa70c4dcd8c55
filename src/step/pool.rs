//! A persistent team of worker threads for the host step.
//!
//! A training step takes tens of microseconds, so handing work to a thread pool per operation
//! (rayon's model) costs more than it saves. Here the threads live as long as the stack: the
//! caller publishes a job, every thread (the caller included) runs it with its own index, and
//! the threads meet at [`Team::barrier`] between the phases of a step. Waiting threads spin
//! briefly, then yield, then park, so an idle stack costs nothing.
//!
//! Which thread does which piece of work never changes a result: the step's work is cut into
//! pieces of a fixed size that do not depend on the number of threads, and each piece is computed
//! the same way whoever computes it (see `host`).

use std::{
    panic::{self, AssertUnwindSafe},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex, PoisonError,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

/// How long an idle worker stays awake (spinning, then yielding) before it parks.
const STAY_AWAKE: Duration = Duration::from_millis(2);
/// Spins before a waiting thread starts to yield its core.
const SPINS: u32 = 1 << 12;

/// One thread's view of a running job.
pub(crate) struct Team<'a> {
    /// This thread's index, `0..threads`; the caller of [`Pool::run`] is 0.
    pub index: usize,
    /// Threads running the job.
    pub threads: usize,
    barrier: &'a Barrier,
}

impl Team<'_> {
    /// The pieces of `0..pieces` this thread computes: a contiguous run, the runs of the team's
    /// threads as equal as can be, in thread order (neighbouring pieces, which may share cache
    /// lines, mostly stay on one thread).
    pub fn share(&self, pieces: usize) -> std::ops::Range<usize> {
        let (each, extra) = (pieces / self.threads, pieces % self.threads);
        let start = self.index * each + self.index.min(extra);
        start..start + each + usize::from(self.index < extra)
    }

    /// Waits until every thread of the team has reached this barrier.
    ///
    /// # Panics
    /// If another thread of the team panicked while this one waited.
    pub fn barrier(&self) {
        self.barrier.wait();
    }
}

/// A job as the workers see it; its real lifetime is that of the [`Pool::run`] call.
type Job = dyn Fn(&Team) + Sync;

/// A pointer to the running job, shared with the workers for the duration of one `run`.
#[derive(Clone, Copy)]
struct JobPtr(*const Job);

// SAFETY: the job is `Sync`, and `run` keeps it alive until every worker is done with it.
unsafe impl Send for JobPtr {}

/// A reusable barrier for a fixed number of threads, which fails instead of hanging when a
/// thread of the team panicked.
struct Barrier {
    threads: usize,
    arrived: AtomicUsize,
    /// Bumped by the last thread to arrive, which releases the others.
    phase: AtomicUsize,
    poisoned: AtomicBool,
}

impl Barrier {
    fn wait(&self) {
        let phase = self.phase.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            self.arrived.store(0, Ordering::Relaxed);
            self.phase.fetch_add(1, Ordering::Release);
            return;
        }
        let mut spins = 0;
        while self.phase.load(Ordering::Acquire) == phase {
            assert!(
                !self.poisoned.load(Ordering::Relaxed),
                "another host step thread panicked"
            );
            back_off(&mut spins);
        }
    }
}

/// Spins `SPINS` times, then yields the core on every call.
fn back_off(spins: &mut u32) {
    if *spins < SPINS {
        *spins += 1;
        std::hint::spin_loop();
    } else {
        thread::yield_now();
    }
}

/// What the caller and the workers share.
struct Shared {
    /// Bumped for every job and at shutdown; a worker runs a job when it sees a new value.
    generation: AtomicUsize,
    job: Mutex<Option<JobPtr>>,
    /// Workers done with the current job.
    finished: AtomicUsize,
    stop: AtomicBool,
    /// Per worker: parked, or about to park, waiting for a job.
    asleep: Vec<AtomicBool>,
    barrier: Barrier,
}

/// A team of `threads` threads: the caller of [`Pool::run`] and `threads - 1` workers.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("threads", &self.threads())
            .finish()
    }
}

impl Pool {
    /// A team of `threads` threads (at least one, the caller's).
    ///
    /// # Panics
    /// If the operating system refuses to start a thread.
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            generation: AtomicUsize::new(0),
            job: Mutex::new(None),
            finished: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            asleep: (1..threads).map(|_| AtomicBool::new(false)).collect(),
            barrier: Barrier {
                threads,
                arrived: AtomicUsize::new(0),
                phase: AtomicUsize::new(0),
                poisoned: AtomicBool::new(false),
            },
        });
        let workers = (1..threads)
            .map(|index| {
                let shared = Arc::clone(&shared);
                thread::Builder::new()
                    .name(format!("grokking-host-{index}"))
                    .spawn(move || work(&shared, index))
                    .expect("the operating system starts a host step thread")
            })
            .collect();
        Self { shared, workers }
    }

    /// Threads in the team, the caller's included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `job` on every thread of the team and returns when all are done.
    ///
    /// # Panics
    /// If `job` panicked on any thread (after every thread has stopped using it).
    pub fn run(&self, job: &(dyn Fn(&Team) + Sync)) {
        let shared = &*self.shared;
        let team = Team {
            index: 0,
            threads: self.threads(),
            barrier: &shared.barrier,
        };
        if self.workers.is_empty() {
            job(&team);
            return;
        }
        assert!(
            !shared.barrier.poisoned.load(Ordering::Relaxed),
            "a host step thread panicked in an earlier step"
        );
        // SAFETY: only the lifetime is erased. The pointer is read by the workers between the
        // generation bump below and their `finished` increment, and this function does not
        // return (or unwind) before every worker has incremented `finished`.
        let erased: *const Job = unsafe { std::mem::transmute(job) };
        *lock(&shared.job) = Some(JobPtr(erased));
        shared.finished.store(0, Ordering::Relaxed);
        shared.generation.fetch_add(1, Ordering::SeqCst);
        for (worker, asleep) in self.workers.iter().zip(&shared.asleep) {
            if asleep.load(Ordering::SeqCst) {
                worker.thread().unpark();
            }
        }
        let mine = panic::catch_unwind(AssertUnwindSafe(|| job(&team)));
        if mine.is_err() {
            shared.barrier.poisoned.store(true, Ordering::Relaxed);
        }
        let mut spins = 0;
        while shared.finished.load(Ordering::Acquire) < self.workers.len() {
            back_off(&mut spins);
        }
        *lock(&shared.job) = None;
        if let Err(payload) = mine {
            panic::resume_unwind(payload);
        }
        assert!(
            !shared.barrier.poisoned.load(Ordering::Relaxed),
            "a host step thread panicked"
        );
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        for worker in &self.workers {
            worker.thread().unpark();
        }
        for worker in self.workers.drain(..) {
            // A worker catches the job's panics, so it only ends by returning.
            let _ = worker.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A worker's life: wait for a new generation, run its job, repeat until told to stop.
fn work(shared: &Shared, index: usize) {
    let mut seen = 0;
    loop {
        seen = wait_for_job(shared, index, seen);
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let job = lock(&shared.job).expect("a published job");
        let team = Team {
            index,
            threads: shared.barrier.threads,
            barrier: &shared.barrier,
        };
        // SAFETY: `run` keeps the job alive until this worker increments `finished`.
        let done = panic::catch_unwind(AssertUnwindSafe(|| unsafe { (*job.0)(&team) }));
        if done.is_err() {
            shared.barrier.poisoned.store(true, Ordering::Relaxed);
        }
        shared.finished.fetch_add(1, Ordering::Release);
    }
}

/// Waits until the generation differs from `seen` and returns it: spinning, then yielding, then
/// parked.
fn wait_for_job(shared: &Shared, index: usize, seen: usize) -> usize {
    let asleep = &shared.asleep[index - 1];
    let mut spins = 0;
    let since = Instant::now();
    loop {
        let generation = shared.generation.load(Ordering::Acquire);
        if generation != seen {
            return generation;
        }
        if spins < SPINS || since.elapsed() < STAY_AWAKE {
            back_off(&mut spins);
            continue;
        }
        // `run` bumps the generation, then reads `asleep`; this thread sets `asleep`, then
        // reads the generation (all SeqCst): either it sees the new job, or `run` unparks it.
        asleep.store(true, Ordering::SeqCst);
        if shared.generation.load(Ordering::SeqCst) == seen {
            thread::park();
        }
        asleep.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_runs_its_share_and_the_barrier_orders_the_phases() {
        for threads in [1, 2, 3] {
            let pool = Pool::new(threads);
            let first: Vec<AtomicUsize> = (0..10).map(|_| AtomicUsize::new(0)).collect();
            let second: Vec<AtomicUsize> = (0..10).map(|_| AtomicUsize::new(0)).collect();
            for round in 1..=50 {
                pool.run(&|team| {
                    for i in team.share(10) {
                        first[i].fetch_add(1, Ordering::Relaxed);
                    }
                    team.barrier();
                    // Every piece of the first phase is done before any of the second starts.
                    for i in team.share(10) {
                        let done: usize = first.iter().map(|f| f.load(Ordering::Relaxed)).sum();
                        assert_eq!(done, 10 * round);
                        second[i].fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            assert!(second.iter().all(|s| s.load(Ordering::Relaxed) == 50));
        }
    }

    #[test]
    fn a_worker_that_slept_wakes_for_the_next_job() {
        let pool = Pool::new(2);
        let count = AtomicUsize::new(0);
        let job = |team: &Team| {
            count.fetch_add(team.index + 1, Ordering::Relaxed);
        };
        pool.run(&job);
        thread::sleep(STAY_AWAKE * 5);
        pool.run(&job);
        assert_eq!(count.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn a_panic_in_a_worker_reaches_the_caller_without_a_hang() {
        let _serial = crate::panics::serial_panics();
        let pool = Pool::new(2);
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            pool.run(&|team| {
                if team.index == 1 {
                    panic!("worker failed");
                }
                team.barrier();
            })
        }));
        assert!(result.is_err());
    }
}
