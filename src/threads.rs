//! How gradflow uses threads, and [`init_thread_pool`] to make the most of them.
//!
//! gradflow runs its parallel work on [rayon](https://docs.rs/rayon)'s global thread pool,
//! whose size follows the `RAYON_NUM_THREADS` environment variable (all cores when unset):
//!
//! - matrix products of at least 2²³ multiply-adds are cut into one block per thread;
//! - recurrent layers split each time step's batch rows across threads when a step's product
//!   has at least 2²⁰ multiply-adds (batch rows are independent within a step, so the results
//!   are the same bit for bit);
//! - elementwise loops over more than 2¹⁸ values (optimizer updates, finiteness checks) are
//!   cut into one chunk per thread.
//!
//! Everything smaller runs on the calling thread: handing a few microseconds of work to
//! another thread costs more than it saves. With `RAYON_NUM_THREADS=1` gradflow never leaves
//! the calling thread, and results never depend on the number of threads beyond f32 round-off
//! in split matrix products (recurrent steps are split bit-identically).
//!
//! **Parallel regions.** rayon puts an idle thread to sleep after a few dozen polls; waking it
//! costs a system call on each side. A training pass that splits product after product, with
//! serial work (BatchNorm, activations) in between, would pay that at every split. So a
//! [`crate::Network`] whose previous pass split work runs the next one as a parallel region:
//! meanwhile the other threads keep polling for work, as OpenMP threads spin (which is what
//! PyTorch runs on). Recurrent layers do the same for their recursion. A region costs nothing
//! with one thread, and a network whose work is too small to split never opens one.
//!
//! **The training thread in the pool.** By default the thread that trains (say `main`) is not
//! one of rayon's threads: parallel work is handed to the pool while the caller waits, so with N
//! threads N + 1 exist. [`init_thread_pool`] makes the calling thread a member of the pool
//! instead, so that N threads in all do the work and handing work over is a cheap join.
//! Measured on a 2-core machine: 3–5% faster steps on a wide MLP at 2 threads; no change at 1
//! thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::{Error, Result};

/// How many times work has been split across threads, by [`note_split`].
static SPLITS: AtomicU64 = AtomicU64::new(0);

/// Records that a piece of work is being split across threads (a matrix product cut into
/// blocks, a recurrent step cut into row groups).
#[inline]
pub(crate) fn note_split() {
    SPLITS.fetch_add(1, Ordering::Relaxed);
}

/// The number of splits so far; a pass that changes it did parallel work.
pub(crate) fn split_count() -> u64 {
    SPLITS.load(Ordering::Relaxed)
}

thread_local! {
    /// How deep this thread is inside work that a parallel region waits for: the region's
    /// body, a piece split off inside it, or a helper's polling job.
    static BUSY: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Runs `f` counted as work a parallel region may wait for (see [`parallel_region`]). The
/// pieces of split work run through this.
#[inline]
pub(crate) fn busy<R>(f: impl FnOnce() -> R) -> R {
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            BUSY.with(|b| b.set(b.get() - 1));
        }
    }
    BUSY.with(|b| b.set(b.get() + 1));
    let _guard = Guard;
    f()
}

/// Runs `f` as a parallel region: while it runs, the pool's other threads poll for work
/// instead of going to sleep between the pieces `f` splits off, as OpenMP's threads do.
///
/// rayon puts an idle thread to sleep after a few dozen polls (tens of microseconds); a pass
/// that splits one matrix product after another, with serial work in between, then pays a
/// wake-up (a system call on each side, several microseconds) for every split — more than a
/// 50-microsecond product gains from a second thread. Here the other threads run a job that
/// keeps taking work with [`rayon::yield_now`] (handing the core to the OS between polls) until
/// `f` returns. Results do not depend on it: only which thread runs a piece changes.
///
/// The region's thread pushes one polling job per other thread before `f` starts, so that they
/// are the oldest jobs in its queue: rayon's thieves take the oldest first, so every polling job
/// is taken before any piece of `f`, by a thread that is not inside the region's work. A thread
/// that comes upon a polling job while it is itself inside work the region waits for (the
/// region's own thread popping a leftover one when `f` is done, or one running a piece) skips
/// it: it could not come back to its own work before the region ends.
///
/// With one thread, `f` simply runs. Called from outside rayon's pool, `f` is handed to a pool
/// thread (see [`init_thread_pool`] to avoid that).
pub(crate) fn parallel_region<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let helpers = rayon::current_num_threads().saturating_sub(1);
    if helpers == 0 {
        return f();
    }
    let done = AtomicBool::new(false);
    with_pollers(helpers, &done, f)
}

/// Pushes `count` polling jobs (one per join, all on this thread's queue), then runs `f`.
fn with_pollers<R: Send, G: FnOnce() -> R + Send>(count: usize, done: &AtomicBool, f: G) -> R {
    if count == 0 {
        /// Ends the polling even when `f` panics (the join would otherwise wait for the
        /// pollers forever instead of passing the panic on).
        struct Done<'a>(&'a AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Release);
            }
        }
        let _done = Done(done);
        return busy(f);
    }
    rayon::join(|| with_pollers(count - 1, done, f), || poll_until(done)).0
}

/// A helper thread's job in a parallel region: take work until `done`.
fn poll_until(done: &AtomicBool) {
    if BUSY.with(|b| b.get()) > 0 {
        return;
    }
    busy(|| {
        while !done.load(Ordering::Acquire) {
            if rayon::yield_now() != Some(rayon::Yield::Executed) {
                std::thread::yield_now();
            }
        }
    })
}

/// Builds rayon's global thread pool with `threads` threads (`None`: `RAYON_NUM_THREADS`, or
/// one per core when that is unset), the calling thread being one of them, and returns the
/// pool's size.
///
/// Call it once, at the start of the program, from the thread that will train (its work then
/// runs on that thread, with the other `threads − 1` joining in). It must come before anything
/// uses rayon's global pool, which is built on first use.
///
/// # Errors
/// [`Error::InvalidConfig`] naming `threads` when `threads` is `Some(0)`, or when rayon's
/// global pool has already been built (by an earlier call, or by a first use of rayon); the
/// pool is then left as it was.
///
/// ```
/// // In a fresh program this succeeds; in this doctest rayon may already be running.
/// match gradflow::threads::init_thread_pool(Some(2)) {
///     Ok(n) => assert_eq!(n, 2),
///     Err(e) => assert!(e.to_string().contains("already")),
/// }
/// ```
pub fn init_thread_pool(threads: Option<usize>) -> Result<usize> {
    if threads == Some(0) {
        return Err(Error::config("thread pool", "threads", "must be at least 1, got 0"));
    }
    let builder = rayon::ThreadPoolBuilder::new().use_current_thread();
    let builder = match threads {
        Some(n) => builder.num_threads(n),
        None => builder,
    };
    builder.build_global().map_err(|e| {
        Error::config("thread pool", "threads", format!("rayon's global pool could not be built: {e}"))
    })?;
    Ok(rayon::current_num_threads())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_a_region_reaches_the_caller_and_the_pool_goes_on() {
        // On a thread of its own, so that a region that never ends fails the test instead of
        // hanging it.
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
            let caught =
                pool.install(|| std::panic::catch_unwind(|| parallel_region(|| panic!("inside a region"))));
            let after = pool.install(|| parallel_region(|| rayon::join(|| 1, || 2)));
            sender.send((caught.is_err(), after)).unwrap();
        });
        let outcome = receiver.recv_timeout(std::time::Duration::from_secs(60));
        assert_eq!(outcome, Ok((true, (1, 2))), "the region did not end after a panic");
    }

    #[test]
    fn zero_threads_is_refused_without_touching_the_pool() {
        let err = init_thread_pool(Some(0)).unwrap_err();
        assert!(err.to_string().contains("threads") && err.to_string().contains("at least 1"), "{err}");
    }
}
