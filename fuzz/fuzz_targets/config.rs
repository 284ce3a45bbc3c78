//! Configuration files: any text is parsed and validated as `wasmtel check`
//! does for `run`/`serve`/`worker` configs and for `receive` configs. It must
//! end in a config or an error naming the file, never a panic or a hang.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use wasmtel::receiver::ReceiverConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // A folder that does not exist, so relative paths lead nowhere.
    let file = Path::new("/nonexistent-wasmtel-fuzz/wasmtel.toml");
    if let Err(e) = wasmtel::config::parse(file, text) {
        assert!(e.to_string().contains("wasmtel.toml"), "a config error does not name the file: {e}");
    }
    if let Ok(mut receiver) = toml::from_str::<ReceiverConfig>(text) {
        receiver.resolve_paths(file.parent().unwrap());
        let _ = receiver.validate(file);
        let _ = receiver.report_max_age_secs();
    }
});
