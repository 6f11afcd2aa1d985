//! Load generator for signal-server.
//!
//! Speaks just enough socket.io v5 / Engine.IO v4 over a raw WebSocket
//! ([`eio`], [`client`]) that one process holds tens of thousands of
//! connections. [`connect`] measures joins and memory, [`chat`] measures
//! relaying and CPU, [`signal`] relays call set-ups with real-size SDPs,
//! [`sfu_load`] drives webrtc-rs bots ([`sfu_bot`])
//! through the SFU and measures CPU per forwarded RTP packet. Results: a
//! human summary and one `RESULT {json}` line ([`report`]); [`compare`] runs
//! the scenarios against several servers and draws [`chart`]s; [`rtc_path`]
//! measures the sans-IO `rtc` crate's per-packet cost in memory, [`shard_load`]
//! the new media core's shard on one UDP port.
//!
//! The modules import one another in layers, never in a cycle (checked by
//! `tests/module_dag.rs`), and this root only declares them: leaves
//! ([`eio`], [`procfs`], [`stats`], [`report`], [`call_setup`], [`chart`],
//! [`cli`]), then [`client`] → [`server`] → [`load`] → [`run`] (what every
//! scenario starts from), then the scenarios and [`compare`].

#![recursion_limit = "256"]

pub mod call_setup;
pub mod chart;
pub mod chat;
pub mod cli;
pub mod client;
pub mod compare;
pub mod connect;
pub mod eio;
pub mod load;
pub mod procfs;
pub mod report;
pub mod rtc_path;
pub mod run;
pub mod server;
pub mod sfu_bot;
pub mod sfu_load;
pub mod shard_load;
pub mod signal;
pub mod stats;
