//! Any bytes given to the weight-file readers (`.pth` zip or legacy pickle, safetensors, Burn
//! record, training checkpoint; chosen by content) must give weights or an error, never a
//! panic, abort or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // load_weights reads from a path (the PyTorch reader needs a file).
    let dir = std::env::temp_dir().join(format!("grokking-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("input");
    std::fs::write(&path, data).unwrap();
    if let Ok(weights) = grokking::io::load_weights(&path) {
        assert_eq!(weights.fc1().len(), weights.d_hidden() * 2 * weights.p());
        assert_eq!(weights.fc2().len(), weights.p() * weights.d_hidden());
    }
});
