//! Running third-party code that panics where it should return an error (Burn's record loader and
//! burn-store's pickle reader on malformed files, GPU backends on a machine without a driver), so
//! the caller can report one clean error line instead of a panic message and a backtrace.

use std::{
    any::Any,
    panic::{self, AssertUnwindSafe},
    sync::{Arc, Mutex, PoisonError},
};

/// Runs `f`. A panic becomes `Err` with the first panic message seen during the call, in any
/// thread (a GPU backend panics in its device thread first, and the caller then sees only a broken
/// channel), and nothing is printed. The panic hook is swapped for the duration of the call, so a
/// panic elsewhere in the process at that moment is silenced too.
pub(crate) fn catch_panics<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let first = Arc::new(Mutex::new(None::<String>));
    let seen = Arc::clone(&first);
    let hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let mut slot = seen.lock().unwrap_or_else(PoisonError::into_inner);
        slot.get_or_insert_with(|| message(info.payload()));
    }));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(hook);
    result.map_err(|payload| {
        let first = first.lock().unwrap_or_else(PoisonError::into_inner).take();
        first.unwrap_or_else(|| message(payload.as_ref()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_passes_through() {
        assert_eq!(catch_panics(|| 7), Ok(7));
    }

    #[test]
    fn a_panic_becomes_its_message() {
        assert_eq!(
            catch_panics(|| -> u8 { panic!("bad {}", "input") }),
            Err("bad input".to_owned())
        );
    }

    #[test]
    fn the_first_panic_of_another_thread_is_the_one_reported() {
        // Like a backend whose device thread dies, leaving the caller a broken channel.
        let result = catch_panics(|| {
            let worker = std::thread::spawn(|| -> u8 { panic!("no driver") });
            worker.join().expect("the worker's result")
        });
        assert_eq!(result, Err("no driver".to_owned()));
    }
}
