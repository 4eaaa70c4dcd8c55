//! Any bytes given to the training-checkpoint parser must give a state that validates, or an
//! error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = grokking::io::checkpoint::state_from_bytes(data, "fuzz".as_ref()) {
        state.validate().expect("a parsed checkpoint validates");
    }
});
