//! Command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Load generator for signal-server: many raw socket.io v5 connections
/// from one process, loopback only.
#[derive(Debug, Parser)]
#[command(name = "bench", version)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open N connections that each join a room; report joins/s, join
    /// latency, lost acks and server RSS per idle joined connection.
    Connect(ConnectArgs),
    /// Fill rooms, then chat with acks at a bounded rate; report
    /// deliveries, losses, latency and server CPU per delivery.
    Chat(ChatArgs),
    /// Rooms of two peers set up calls through the server with real-size
    /// Chromium SDPs and trickled ICE candidates; report relay latency,
    /// losses and server CPU per relayed signal.
    Signal(SignalArgs),
    /// One webrtc-rs publisher bot sends synthetic VP8 + Opus RTP into an
    /// SFU room, N subscriber bots count what they receive; report loss
    /// and server CPU per forwarded packet.
    Sfu(SfuArgs),
    /// The sans-IO `rtc` crate's own cost per forwarded packet, in memory
    /// (no server): one publisher connection read, N subscriber connections
    /// written, every packet read back by every subscriber.
    RtcPath(RtcPathArgs),
    /// The new media core's shard (one UDP port, issue 19) under `sfu`'s
    /// packet mix, no signaling server: CPU of the shard's thread per
    /// forwarded packet, and loss.
    Shard(ShardArgs),
    /// The same connect and chat scenarios against several servers (ours
    /// and the Node.js reference), side by side: results.json, SVG charts
    /// and summary.md in --out.
    Compare(CompareArgs),
}

#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Server URL; only 127.0.0.1/localhost is accepted.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub url: String,
    /// PID of an already running server, for RSS and CPU sampling.
    #[arg(long, conflicts_with = "spawn")]
    pub server_pid: Option<u32>,
    /// Start this server binary with `--host 127.0.0.1 --port 0` plus the
    /// arguments after `--`, use its address and PID, stop it at the end.
    #[arg(long, value_name = "SERVER_BINARY")]
    pub spawn: Option<PathBuf>,
    /// Spawn this many servers alike (nodes of one deployment: pass them a
    /// shared `--redis-url` after `--`); connection i goes to node i % N, and
    /// CPU and memory are summed over all of them.
    #[arg(long, default_value_t = 1, requires = "spawn")]
    pub nodes: usize,
    /// More PIDs whose CPU and memory count as the server's (e.g. redis-server).
    #[arg(long, value_delimiter = ',')]
    pub also_sample: Vec<u32>,
    /// File for the spawned server's stderr (default: discarded).
    #[arg(long, requires = "spawn")]
    pub server_log: Option<PathBuf>,
    /// Connections being set up (connect + join) at the same time.
    #[arg(long, default_value_t = 500)]
    pub concurrency: usize,
    /// Connections per source address; later ones bind 127.0.0.2, .3, …
    /// (the ephemeral port range holds about 28 000 per address).
    #[arg(long, default_value_t = 20_000)]
    pub conns_per_source_ip: usize,
    /// Send `join` right after `40`, without waiting for the server's
    /// `40{sid}` reply (stresses handler registration).
    #[arg(long)]
    pub no_wait_connect: bool,
    /// Seconds one connection may take from TCP connect to join ack.
    #[arg(long, default_value_t = 15)]
    pub join_timeout: u64,
    /// Global bound on the whole run, in seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Tokio worker threads of the load generator (leave cores to the server).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Extra arguments for the spawned server (after `--`).
    #[arg(last = true, value_name = "SERVER_ARGS")]
    pub server_args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections to open.
    #[arg(long, default_value_t = 1000)]
    pub conns: usize,
    /// Rooms the connections spread over (round robin).
    #[arg(long, default_value_t = 100)]
    pub rooms: usize,
    /// Seconds to stay idle after all joined, before sampling RSS.
    #[arg(long, default_value_t = 5)]
    pub idle_secs: u64,
    /// During the idle time, sample the server's RSS and the live
    /// connections every this many seconds (0: only at the end): a soak.
    #[arg(long, default_value_t = 0)]
    pub sample_every: u64,
}

#[derive(Debug, Clone, Args)]
pub struct ChatArgs {
    #[command(flatten)]
    pub common: Common,
    /// Rooms.
    #[arg(long, default_value_t = 100)]
    pub rooms: usize,
    /// Peers (connections) per room; each message reaches the other P-1.
    #[arg(long, default_value_t = 10)]
    pub peers_per_room: usize,
    /// Messages per room, sent round robin by the room's peers.
    #[arg(long, default_value_t = 100)]
    pub messages: usize,
    /// Total messages per second over all rooms.
    #[arg(long, default_value_t = 2000.0)]
    pub rate: f64,
    /// Seconds to wait after the fill before chatting.
    #[arg(long, default_value_t = 1)]
    pub settle_secs: u64,
    /// Seconds to wait for outstanding deliveries and acks after the last send.
    #[arg(long, default_value_t = 10)]
    pub drain_secs: u64,
}

#[derive(Debug, Clone, Args)]
pub struct SignalArgs {
    #[command(flatten)]
    pub common: Common,
    /// Rooms of two peers.
    #[arg(long, default_value_t = 500)]
    pub pairs: usize,
    /// Call set-ups in total, round robin over the pairs.
    #[arg(long, default_value_t = 2000)]
    pub calls: usize,
    /// Call set-ups started per second over all pairs.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Seconds to wait after the fill before calling.
    #[arg(long, default_value_t = 1)]
    pub settle_secs: u64,
    /// Seconds to wait for outstanding signals and acks after the last call.
    #[arg(long, default_value_t = 10)]
    pub drain_secs: u64,
}

#[derive(Debug, Clone, Args)]
pub struct SfuArgs {
    #[command(flatten)]
    pub common: Common,
    /// Subscriber bots (each one peer connection to the SFU).
    #[arg(long, default_value_t = 10)]
    pub subscribers: usize,
    /// Length of the measured window, in seconds.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Seconds between "every subscriber receives" and the window.
    #[arg(long, default_value_t = 2)]
    pub warmup_secs: u64,
    /// Video RTP packets per second from the publisher (one frame each).
    #[arg(long, default_value_t = 100)]
    pub video_pps: u32,
    /// Video payload bytes per packet (VP8 payload descriptor included).
    #[arg(long, default_value_t = 1000)]
    pub video_bytes: usize,
    /// Audio (Opus) RTP packets per second from the publisher.
    #[arg(long, default_value_t = 50)]
    pub audio_pps: u32,
    /// Audio payload bytes per packet.
    #[arg(long, default_value_t = 100)]
    pub audio_bytes: usize,
    /// A VP8 keyframe at least this often (seconds), besides those PLIs ask for.
    #[arg(long, default_value_t = 2)]
    pub keyframe_secs: u64,
    /// Seconds for all bots to join, connect and receive media.
    #[arg(long, default_value_t = 90)]
    pub setup_timeout: u64,
    /// Subscriber bots being set up at the same time.
    #[arg(long, default_value_t = 4)]
    pub setup_concurrency: usize,
    /// With --spawn: first UDP port of the SFU range passed as
    /// `--sfu-ports BASE-(BASE+subscribers+32)` (unless given after `--`).
    #[arg(long, default_value_t = 47000)]
    pub sfu_port_base: u16,
}

#[derive(Debug, Clone, Args)]
pub struct RtcPathArgs {
    /// Subscriber connections written to for each packet.
    #[arg(long, default_value_t = 50)]
    pub subscribers: usize,
    /// Packets forwarded (each to every subscriber).
    #[arg(long, default_value_t = 2000)]
    pub packets: usize,
    /// Skip reading every packet back at every subscriber (for a profile
    /// of the SFU's side alone; the check is the default).
    #[arg(long)]
    pub no_check: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ShardArgs {
    /// Subscriber peers.
    #[arg(long, default_value_t = 50)]
    pub subscribers: usize,
    /// Length of the measured window, in seconds.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Packets per second from the publisher (two of three 1 000 B, one 100 B).
    #[arg(long, default_value_t = 150)]
    pub pps: u32,
}

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// A server to measure, NAME=PATH (spawned like `--spawn PATH`); the
    /// first is "ours", the second the reference for the target ratios.
    #[arg(long = "server", value_parser = parse_target, required = true)]
    pub servers: Vec<Target>,
    /// Directory for results.json, summary.md and the charts.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
    /// Tokio worker threads of each load generator run.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Connection counts of the memory / connect-rate runs.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000")]
    pub conns: Vec<usize>,
    /// Idle seconds before RSS is read in those runs.
    #[arg(long, default_value_t = 5)]
    pub idle_secs: u64,
    /// Fan-out chat: rooms.
    #[arg(long, default_value_t = 500)]
    pub fanout_rooms: usize,
    /// Fan-out chat: peers per room.
    #[arg(long, default_value_t = 10)]
    pub fanout_peers: usize,
    /// Fan-out chat: messages per room.
    #[arg(long, default_value_t = 20)]
    pub fanout_messages: usize,
    /// Fan-out chat: messages per second over all rooms.
    #[arg(long, default_value_t = 1000.0)]
    pub fanout_rate: f64,
    /// Signal relay: rooms of two peers.
    #[arg(long, default_value_t = 500)]
    pub signal_pairs: usize,
    /// Signal relay: call set-ups in total.
    #[arg(long, default_value_t = 2000)]
    pub signal_calls: usize,
    /// Signal relay: call set-ups per second.
    #[arg(long, default_value_t = 100.0)]
    pub signal_rate: f64,
    /// The big room's size.
    #[arg(long, default_value_t = 200)]
    pub room_peers: usize,
    /// Offered messages per second in the big room, one run each (stops
    /// after two unhealthy runs in a row).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "25,50,100,200,400,800,1600,3200,6400"
    )]
    pub sweep_rates: Vec<f64>,
    /// Seconds of sending per sweep run.
    #[arg(long, default_value_t = 5.0)]
    pub sweep_secs: f64,
    /// A sweep run is healthy when nothing is lost and p99 stays under this.
    #[arg(long, default_value_t = 50.0)]
    pub p99_limit_ms: f64,
    /// Only re-render charts and summary.md from this results.json.
    #[arg(long)]
    pub render_only: Option<PathBuf>,
    /// Soak instead: this many idle joined connections per server…
    #[arg(long, default_value_t = 10_000)]
    pub soak_conns: usize,
    /// …held this many seconds with RSS sampled (0: no soak, run the comparison).
    #[arg(long, default_value_t = 0)]
    pub soak_secs: u64,
}

/// One server under test: a label and the binary (or executable script).
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub path: PathBuf,
}

pub fn parse_target(s: &str) -> Result<Target, String> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PATH, got {s:?}"))?;
    if name.is_empty() || path.is_empty() {
        return Err(format!("expected NAME=PATH, got {s:?}"));
    }
    Ok(Target {
        name: name.to_owned(),
        path: PathBuf::from(path),
    })
}
