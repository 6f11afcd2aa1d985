//! Arbitrary bytes as the JSON payload of every client → server event: no
//! panic; accepted exactly when PROTOCOL.md's rules accept, with the meaning
//! they give; round trip. Oracles: protocol-oracles/src/client.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| protocol_oracles::check_client_payload(data));
