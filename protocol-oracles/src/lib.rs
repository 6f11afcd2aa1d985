//! Oracles for fuzzing the `protocol` crate's parsers of untrusted input.
//!
//! One copy of the invariants, used by
//! - the `cargo fuzz` targets in `fuzz/` (nightly, libFuzzer), and
//! - this crate's `tests/fuzz_corpus.rs`, which runs them on stable over the
//!   committed seed corpus plus the deterministic [`mutate`]or, so
//!   `cargo test --workspace` keeps them honest.
//!
//! `protocol` itself carries none of this: it keeps one build for every crate
//! that depends on it, the server and the WASM client among them.
//!
//! Every `check_*` function panics when an invariant does not hold, and
//! returns normally for any input that is handled as documented, valid or not.
//!
//! The [`rules`] are written from `PROTOCOL.md` and
//! `docs/server-contract.md`, independently of `protocol`'s `names.rs`, and
//! the payload specs read a generic JSON tree, independently of the serde
//! derives: a value the parser accepts must be valid by the rules (and equal
//! to what the rules say it means), and a value valid by the rules must be
//! accepted. See docs/fuzzing.md.

mod client;
mod json;
mod mutate;
mod names;
pub mod rules;
mod server;

pub use client::check_client_payload;
pub use mutate::{XorShift, edge_string, mutate, parse_dict};
pub use names::check_names;
pub use server::check_server_payload;
