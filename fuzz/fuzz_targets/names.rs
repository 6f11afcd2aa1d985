//! Arbitrary strings through RoomName, DisplayName, ChatText, Password and
//! Mode: accepted exactly when the documented rule accepts. Oracles:
//! protocol-oracles/src/names.rs. The input is its longest valid UTF-8 prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = match std::str::from_utf8(data) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default(),
    };
    protocol_oracles::check_names(s);
});
