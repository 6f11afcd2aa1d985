//! Arbitrary bytes as every server → client event and ack the client reads
//! (`Ack<T>` in the WASM client): no panic, round trip, `Ack<T>` consistent
//! with `T` / `ErrorAck`. Oracles: protocol-oracles/src/server.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| protocol_oracles::check_server_payload(data));
