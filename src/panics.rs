//! Running third-party code that panics where it should return an error (Burn's record loader and
//! burn-store's pickle reader on malformed files, GPU backends on a machine without a driver), so
//! the caller can report one clean error line instead of a panic message and a backtrace.

use std::{
    any::Any,
    panic::{self, AssertUnwindSafe},
    sync::{Arc, Mutex, MutexGuard, Once, PoisonError},
    thread::{self, ThreadId},
};

/// One running [`catch_panics`] call: its thread, and the first panic message it was given.
struct Capture {
    thread: ThreadId,
    first: Option<String>,
}

/// The running calls. The process's panic hook is replaced once, by [`install`], and never
/// swapped back and forth, so concurrent calls cannot leave a stale hook behind.
static ACTIVE: Mutex<Vec<Arc<Mutex<Capture>>>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Installs the crate's panic hook (once per process): while a [`catch_panics`] call runs, a
/// panic's message goes to it instead of stderr; otherwise the hook that was installed before
/// (the default one, or the application's) runs as usual.
fn install() {
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !record(info.payload()) {
                previous(info);
            }
        }));
    });
}

/// Gives a panic's message to the running calls: a panic on a thread that runs a call goes to
/// that call only; a panic on any other thread (a backend's device thread) goes to every call.
/// False when no call runs.
fn record(payload: &(dyn Any + Send)) -> bool {
    let active = lock(&ACTIVE);
    let here = thread::current().id();
    let threads: Vec<ThreadId> = active.iter().map(|c| lock(c).thread).collect();
    for capture in active.iter() {
        let mut capture = lock(capture);
        if capture.thread == here || !threads.contains(&here) {
            capture.first.get_or_insert_with(|| message(payload));
        }
    }
    !active.is_empty()
}

/// Runs `f`. A panic becomes `Err` with the first panic message seen during the call, on this
/// thread or on a thread that runs no call of its own (a GPU backend panics in its device
/// thread first, and the caller then sees only a broken channel), and nothing is printed. While
/// a call runs, a panic elsewhere in the process is silenced too; calls on several threads at
/// once each get their own thread's panic.
pub(crate) fn catch_panics<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install();
    let capture = Arc::new(Mutex::new(Capture {
        thread: thread::current().id(),
        first: None,
    }));
    lock(&ACTIVE).push(Arc::clone(&capture));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    lock(&ACTIVE).retain(|c| !Arc::ptr_eq(c, &capture));
    result.map_err(|payload| {
        let seen = lock(&capture).first.take();
        seen.unwrap_or_else(|| message(payload.as_ref()))
    })
}

/// The text of a panic payload (`panic!` makes a `&str` or a `String`).
fn message(payload: &(dyn Any + Send)) -> String {
    match (
        payload.downcast_ref::<&str>(),
        payload.downcast_ref::<String>(),
    ) {
        (Some(text), _) => (*text).to_owned(),
        (_, Some(text)) => text.clone(),
        _ => "a panic without a message".to_owned(),
    }
}

/// Held by the unit tests that panic on purpose. While a [`catch_panics`] call runs, a panic on
/// a thread that runs no call goes to every running call (a GPU backend's device thread), so a
/// test that panics elsewhere in the test process would be reported by another test's call.
#[cfg(test)]
pub(crate) static PANICKING_TESTS: Mutex<()> = Mutex::new(());

/// Takes [`PANICKING_TESTS`] (whether or not a test panicked while holding it).
#[cfg(test)]
pub(crate) fn serial_panics() -> MutexGuard<'static, ()> {
    lock(&PANICKING_TESTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_passes_through() {
        assert_eq!(catch_panics(|| 7), Ok(7));
    }

    #[test]
    fn a_panic_becomes_its_message() {
        let _serial = serial_panics();
        assert_eq!(
            catch_panics(|| -> u8 { panic!("bad {}", "input") }),
            Err("bad input".to_owned())
        );
    }

    #[test]
    fn calls_on_many_threads_at_once_each_get_their_own_panic() {
        let _serial = serial_panics();
        let workers: Vec<_> = (0..4)
            .map(|t| {
                thread::spawn(move || {
                    for i in 0..200 {
                        let got = catch_panics(|| -> u8 { panic!("thread {t} call {i}") });
                        assert_eq!(got, Err(format!("thread {t} call {i}")));
                        assert_eq!(catch_panics(|| t + i), Ok(t + i));
                    }
                    thread::current().id()
                })
            })
            .collect();
        let ids: Vec<ThreadId> = workers
            .into_iter()
            .map(|w| w.join().expect("no assertion failed"))
            .collect();
        // Every call unregistered itself: nothing is left to swallow later panics.
        assert!(lock(&ACTIVE).iter().all(|c| !ids.contains(&lock(c).thread)));
    }

    #[test]
    fn the_first_panic_of_another_thread_is_the_one_reported() {
        // Like a backend whose device thread dies, leaving the caller a broken channel.
        let _serial = serial_panics();
        let result = catch_panics(|| {
            let worker = std::thread::spawn(|| -> u8 { panic!("no driver") });
            worker.join().expect("the worker's result")
        });
        assert_eq!(result, Err("no driver".to_owned()));
    }
}
