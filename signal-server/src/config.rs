//! Configuration: the plain [`Config`] the library takes, and the [`Cli`]
//! (flags and environment variables) the binary parses into it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use protocol::Mode;

/// Everything the server needs; built by the binary, or by tests directly.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory of the built web client (`index.html` and assets).
    pub static_dir: PathBuf,
    pub limits: Limits,
    /// Mode of a room whose creating join names none.
    pub default_mode: Mode,
    /// SFU settings; `None`: SFU rooms are refused.
    pub sfu: Option<sfu::SfuConfig>,
    pub ice: IceConfig,
    /// Origins allowed by CORS; empty means CORS is closed. `*` allows any.
    pub cors_origins: Vec<String>,
    /// Client address from the proxy's `X-Forwarded-For` (for the per-address limit).
    pub trust_proxy: bool,
    /// Engine.IO heartbeat: a client silent for interval + timeout is gone.
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// How long a lost connection's seats wait for a resume (PROTOCOL.md
    /// version 2); zero: a lost connection leaves at once.
    pub resume_grace: Duration,
    /// The largest file browsers send each other (peer to peer: never
    /// through this server); `/api/config` tells the web client.
    pub file_max_bytes: u64,
    /// Per-socket read buffer of the WebSocket transport, in bytes.
    pub ws_read_buffer: usize,
    /// Scale-out: rooms in Redis, relays through the socket.io Redis adapter.
    pub redis: Option<RedisConfig>,
    /// An HTTP connection must send its request head within this.
    pub http_header_timeout: Duration,
    /// An HTTP connection with no request in flight is closed after this
    /// (upgraded WebSockets have the Engine.IO heartbeat instead).
    pub http_idle_timeout: Duration,
}

/// Where the nodes of one deployment meet.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://` or `rediss://` URL (RESP3 is always used).
    pub url: String,
    /// Prefix of every key and channel: deployments sharing a Redis must differ.
    pub prefix: String,
}

/// Limits that protect the server and the other peers from one client.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_peers_per_room: usize,
    pub history: usize,
    /// Largest event packet answered normally; larger gets `payload_too_large`.
    pub max_message_bytes: usize,
    /// Token bucket per socket: this many events at once...
    pub rate_burst: u32,
    /// ...refilled at this many per second.
    pub rate_per_sec: u32,
    /// Packets queued per socket before further sends to it are dropped (and counted).
    pub send_buffer: usize,
    /// Engine.IO sessions per client address; 0 = unlimited.
    pub max_conns_per_ip: usize,
    /// Bytes queued for one socket that does not read; beyond, it is
    /// disconnected (docs/server-contract.md, "Limits").
    pub send_buffer_bytes: usize,
    /// Bytes queued for all the sockets of one client address together.
    pub send_buffer_bytes_per_ip: usize,
    /// Chat history kept per room, in bytes (besides `history` messages).
    pub history_bytes: usize,
    /// Chat history written from one client address, in bytes, over all rooms;
    /// beyond, that address's oldest kept messages go first.
    pub history_bytes_per_ip: usize,
    /// Rooms one socket may be in at once.
    pub max_rooms_per_socket: usize,
    /// SFU peer connections of one client address at once.
    pub sfu_peers_per_ip: usize,
    /// `/api/config` answers (each may mint TURN credentials) per client
    /// address and minute.
    pub config_requests_per_min: u32,
}

/// ICE servers handed to browsers by `/api/config`.
#[derive(Debug, Clone, Default)]
pub struct IceConfig {
    pub stun_urls: Vec<String>,
    pub turn_urls: Vec<String>,
    /// coturn `use-auth-secret`: credentials are minted per request.
    pub turn_secret: Option<String>,
    pub turn_ttl: Duration,
    /// Static TURN credentials, used when no secret is set.
    pub turn_username: Option<String>,
    pub turn_credential: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            static_dir: PathBuf::from("dist"),
            limits: Limits {
                max_peers_per_room: 100,
                history: 100,
                max_message_bytes: 64 * 1024,
                rate_burst: 300,
                rate_per_sec: 100,
                send_buffer: 1024,
                max_conns_per_ip: 256,
                send_buffer_bytes: 1 << 20,
                send_buffer_bytes_per_ip: 8 << 20,
                history_bytes: 64 << 10,
                history_bytes_per_ip: 4 << 20,
                max_rooms_per_socket: 16,
                sfu_peers_per_ip: 32,
                config_requests_per_min: 60,
            },
            default_mode: Mode::Mesh,
            sfu: None,
            ice: IceConfig {
                turn_ttl: Duration::from_secs(86_400),
                ..IceConfig::default()
            },
            cors_origins: Vec::new(),
            trust_proxy: false,
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            resume_grace: Duration::from_secs(15),
            file_max_bytes: 1 << 30,
            ws_read_buffer: 1024,
            redis: None,
            http_header_timeout: Duration::from_secs(10),
            http_idle_timeout: Duration::from_secs(120),
        }
    }
}

/// socket.io signaling server for WebRTC rooms: rooms, SDP/ICE relay, chat,
/// typing, presence; serves the web client and its ICE configuration.
///
/// Every option can also be set by the environment variable shown.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    /// Address to listen on. Default: 0.0.0.0 when PORT is set (Heroku), else 127.0.0.1.
    #[arg(long, env = "HOST")]
    pub host: Option<IpAddr>,
    /// Port to listen on; 0 picks a free one (the chosen port is printed).
    #[arg(long, env = "PORT")]
    pub port: Option<u16>,
    /// Listen backlog: pending connections the kernel queues during bursts.
    #[arg(long, env = "LISTEN_BACKLOG", default_value_t = 4096)]
    pub listen_backlog: u32,
    /// Directory of the built web client, served at / with index.html for client routes.
    #[arg(long, env = "STATIC_DIR", default_value = "dist")]
    pub static_dir: PathBuf,
    /// Chat messages kept per room and sent to late joiners.
    #[arg(long, env = "HISTORY_LIMIT", default_value_t = 100)]
    pub history_limit: usize,
    /// Peers per room; the next join gets `room_full`.
    #[arg(long, env = "MAX_PEERS_PER_ROOM", default_value_t = 100)]
    pub max_peers_per_room: usize,
    /// Largest event, in bytes; larger gets `payload_too_large`. A client sending
    /// more than 4x this in one frame is disconnected by the transport.
    #[arg(long, env = "MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub max_message_bytes: usize,
    /// Events a socket may send in a burst (token bucket size).
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 300)]
    pub rate_limit_burst: u32,
    /// Sustained events per second per socket (token refill rate).
    #[arg(long, env = "RATE_LIMIT_PER_SEC", default_value_t = 100)]
    pub rate_limit_per_sec: u32,
    /// Packets queued per socket before sends to it are dropped (and counted in /metrics).
    #[arg(long, env = "SEND_BUFFER", default_value_t = 1024)]
    pub send_buffer: usize,
    /// Connections (Engine.IO sessions) per client address; more get HTTP 429. 0: unlimited.
    #[arg(long, env = "MAX_CONNS_PER_IP", default_value_t = 256)]
    pub max_conns_per_ip: usize,
    /// Bytes queued for one socket that stops reading; beyond, it is disconnected.
    #[arg(long, env = "SEND_BUFFER_BYTES", default_value_t = 1 << 20)]
    pub send_buffer_bytes: usize,
    /// Bytes queued for all the sockets of one client address together; beyond,
    /// the socket whose queue would cross it is disconnected.
    #[arg(long, env = "SEND_BUFFER_BYTES_PER_IP", default_value_t = 8 << 20)]
    pub send_buffer_bytes_per_ip: usize,
    /// Chat history kept per room, in bytes (the oldest messages go first).
    #[arg(long, env = "HISTORY_BYTES", default_value_t = 64 << 10)]
    pub history_bytes: usize,
    /// Chat history written from one client address over all rooms, in bytes
    /// (that address's oldest kept messages go first).
    #[arg(long, env = "HISTORY_BYTES_PER_IP", default_value_t = 4 << 20)]
    pub history_bytes_per_ip: usize,
    /// Rooms one socket may be in at once; another join gets `bad_request`.
    #[arg(long, env = "MAX_ROOMS_PER_SOCKET", default_value_t = 16)]
    pub max_rooms_per_socket: usize,
    /// SFU peer connections of one client address at once.
    #[arg(long, env = "SFU_PEERS_PER_IP", default_value_t = 32)]
    pub sfu_peers_per_ip: usize,
    /// `/api/config` requests (each may mint TURN credentials) per client address
    /// per minute; more get HTTP 429.
    #[arg(long, env = "CONFIG_REQUESTS_PER_MIN", default_value_t = 60)]
    pub config_requests_per_min: u32,
    /// Seconds an HTTP connection has to send its request head.
    #[arg(long, env = "HTTP_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub http_header_timeout_secs: u64,
    /// Seconds an idle HTTP keep-alive connection is kept open.
    #[arg(long, env = "HTTP_IDLE_TIMEOUT_SECS", default_value_t = 120)]
    pub http_idle_timeout_secs: u64,
    /// Behind a reverse proxy (Heroku, nginx): the client address is the last
    /// X-Forwarded-For entry. Off: the TCP peer (a client could forge the header).
    #[arg(long, env = "TRUST_PROXY", default_value_t = false)]
    pub trust_proxy: bool,
    /// Mode of rooms created without one.
    #[arg(long, env = "DEFAULT_MODE", default_value = "mesh")]
    pub default_mode: Mode,
    /// STUN server URLs for browsers, comma separated (e.g. stun:stun.example.org:3478).
    #[arg(long, env = "STUN_URLS", value_delimiter = ',')]
    pub stun_urls: Vec<String>,
    /// TURN server URLs for browsers, comma separated (e.g. turn:turn.example.org:3478).
    #[arg(long, env = "TURN_URLS", value_delimiter = ',')]
    pub turn_urls: Vec<String>,
    /// TURN shared secret (coturn use-auth-secret): mint time-limited credentials.
    #[arg(long, env = "TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,
    /// Lifetime of minted TURN credentials, in seconds.
    #[arg(long, env = "TURN_TTL_SECS", default_value_t = 86_400)]
    pub turn_ttl_secs: u64,
    /// Static TURN username (when no secret is set).
    #[arg(long, env = "TURN_USERNAME")]
    pub turn_username: Option<String>,
    /// Static TURN credential (when no secret is set).
    #[arg(long, env = "TURN_CREDENTIAL", hide_env_values = true)]
    pub turn_credential: Option<String>,
    /// Origins allowed to call the server cross-origin, comma separated, or *. Empty: closed.
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Engine.IO ping interval, in milliseconds.
    #[arg(long, env = "PING_INTERVAL_MS", default_value_t = 25_000)]
    pub ping_interval_ms: u64,
    /// Engine.IO ping timeout, in milliseconds: a silent client is dropped after interval + timeout.
    #[arg(long, env = "PING_TIMEOUT_MS", default_value_t = 20_000)]
    pub ping_timeout_ms: u64,
    /// Seconds a lost connection's seats are held for a resume (0: a lost connection leaves at once).
    #[arg(long, env = "RESUME_GRACE_SECS", default_value_t = 15)]
    pub resume_grace_secs: u64,
    /// The largest file the web client lets people send each other, in
    /// bytes (files go browser to browser, never through this server).
    #[arg(long, env = "FILE_MAX_BYTES", default_value_t = 1 << 30)]
    pub file_max_bytes: u64,
    /// Enable SFU rooms (`join` with `"mode": "sfu"`): the server forwards media.
    #[arg(long, env = "SFU", default_value_t = false)]
    pub sfu: bool,
    /// IP the SFU's peer connections bind to (a concrete address, not a wildcard).
    #[arg(long, env = "SFU_IP", default_value = "127.0.0.1")]
    pub sfu_ip: IpAddr,
    /// UDP port range of the SFU, one port per peer connection: MIN-MAX.
    #[arg(long, env = "SFU_PORTS", default_value = "40000-40999", value_parser = parse_port_range)]
    pub sfu_ports: (u16, u16),
    /// Public IP announced by the SFU when it sits behind 1:1 NAT (a cloud VM).
    #[arg(long, env = "SFU_PUBLIC_IP")]
    pub sfu_public_ip: Option<String>,
    /// Also accept ICE over TCP (browsers on networks that block UDP): on
    /// the shard's port number, or, with the webrtc engine, on the same
    /// port numbers as its UDP ports.
    #[arg(long, env = "SFU_TCP", default_value_t = false)]
    pub sfu_tcp: bool,
    /// The SFU's media core: `shard` (every connection on the first port
    /// of SFU_PORTS, forwarded on one thread; docs/sfu-engine.md) or
    /// `webrtc` (a UDP port of SFU_PORTS per peer connection). Unset:
    /// `shard`.
    #[arg(long, env = "SFU_ENGINE", value_parser = parse_engine)]
    pub sfu_engine: Option<sfu::SfuEngine>,
    /// Redis URL: run as one node of several (rooms shared through Redis).
    /// Unset: one node, everything in memory.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of this deployment's Redis keys and channels.
    #[arg(long, env = "REDIS_PREFIX", default_value = "signal")]
    pub redis_prefix: String,
    /// Accept a self-signed certificate on a `rediss://` REDIS_URL (Heroku's
    /// Redis uses one and its URL cannot say so): appends `#insecure`.
    #[arg(long, env = "REDIS_TLS_INSECURE", default_value_t = false)]
    pub redis_tls_insecure: bool,
    /// WebSocket read buffer per connection, in bytes (memory per connection vs. syscalls).
    #[arg(long, env = "WS_READ_BUFFER", default_value_t = 1024)]
    pub ws_read_buffer: usize,
}

impl Cli {
    /// The address to bind: PORT set means all interfaces (Heroku routes to it).
    pub fn addr(&self) -> SocketAddr {
        let host = self.host.unwrap_or(if self.port.is_some() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        });
        SocketAddr::new(host, self.port.unwrap_or(3000))
    }

    pub fn config(&self) -> Config {
        let non_empty = |v: &[String]| -> Vec<String> {
            v.iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        Config {
            static_dir: self.static_dir.clone(),
            limits: Limits {
                max_peers_per_room: self.max_peers_per_room.max(1),
                history: self.history_limit,
                max_message_bytes: self.max_message_bytes.max(1024),
                rate_burst: self.rate_limit_burst.max(1),
                rate_per_sec: self.rate_limit_per_sec,
                send_buffer: self.send_buffer.max(16),
                max_conns_per_ip: self.max_conns_per_ip,
                // At least one largest event must fit.
                send_buffer_bytes: self
                    .send_buffer_bytes
                    .max(4 * self.max_message_bytes.max(1024)),
                send_buffer_bytes_per_ip: self
                    .send_buffer_bytes_per_ip
                    .max(4 * self.max_message_bytes.max(1024)),
                history_bytes: self.history_bytes.max(16 << 10),
                history_bytes_per_ip: self.history_bytes_per_ip.max(16 << 10),
                max_rooms_per_socket: self.max_rooms_per_socket.max(1),
                sfu_peers_per_ip: self.sfu_peers_per_ip.max(1),
                config_requests_per_min: self.config_requests_per_min.max(1),
            },
            default_mode: self.default_mode,
            sfu: self.sfu.then(|| sfu::SfuConfig {
                bind_ip: self.sfu_ip,
                port_min: self.sfu_ports.0,
                port_max: self.sfu_ports.1,
                nat_1to1_ip: self.sfu_public_ip.clone(),
                pli_throttle: Duration::from_millis(500),
                ice_tcp: self.sfu_tcp,
                engine: self.sfu_engine.unwrap_or(sfu::SfuEngine::Shard),
            }),
            ice: IceConfig {
                stun_urls: non_empty(&self.stun_urls),
                turn_urls: non_empty(&self.turn_urls),
                turn_secret: self.turn_secret.clone().filter(|s| !s.is_empty()),
                turn_ttl: Duration::from_secs(self.turn_ttl_secs.max(60)),
                turn_username: self.turn_username.clone(),
                turn_credential: self.turn_credential.clone(),
            },
            cors_origins: non_empty(&self.cors_origins),
            trust_proxy: self.trust_proxy,
            ping_interval: Duration::from_millis(self.ping_interval_ms.max(100)),
            ping_timeout: Duration::from_millis(self.ping_timeout_ms.max(100)),
            resume_grace: Duration::from_secs(self.resume_grace_secs.min(3600)),
            file_max_bytes: self.file_max_bytes,
            ws_read_buffer: self.ws_read_buffer.max(256),
            http_header_timeout: Duration::from_secs(self.http_header_timeout_secs.max(1)),
            http_idle_timeout: Duration::from_secs(self.http_idle_timeout_secs.max(1)),
            redis: self
                .redis_url
                .as_deref()
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(|url| RedisConfig {
                    url: if self.redis_tls_insecure
                        && url.starts_with("rediss://")
                        && !url.contains('#')
                    {
                        format!("{url}#insecure")
                    } else {
                        url.to_owned()
                    },
                    prefix: self.redis_prefix.clone(),
                }),
        }
    }
}

fn parse_engine(s: &str) -> Result<sfu::SfuEngine, String> {
    match s {
        "webrtc" => Ok(sfu::SfuEngine::Webrtc),
        "shard" => Ok(sfu::SfuEngine::Shard),
        _ => Err(format!("{s:?}: the SFU engine is webrtc or shard")),
    }
}

fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("expected MIN-MAX, got {s:?}"))?;
    let a: u16 = a
        .trim()
        .parse()
        .map_err(|e| format!("bad port {a:?}: {e}"))?;
    let b: u16 = b
        .trim()
        .parse()
        .map_err(|e| format!("bad port {b:?}: {e}"))?;
    if a == 0 || a > b {
        return Err(format!("bad range {a}-{b}"));
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn port_means_all_interfaces() {
        let cli = Cli::parse_from(["signal-server"]);
        assert_eq!(cli.addr().to_string(), "127.0.0.1:3000");
        let cli = Cli::parse_from(["signal-server", "--port", "8080"]);
        assert_eq!(cli.addr().to_string(), "0.0.0.0:8080");
        let cli = Cli::parse_from(["signal-server", "--port", "0", "--host", "127.0.0.1"]);
        assert_eq!(cli.addr().to_string(), "127.0.0.1:0");
    }

    #[test]
    fn lists_are_comma_separated() {
        let cli = Cli::parse_from([
            "signal-server",
            "--turn-urls",
            "turn:a:3478,turns:b:5349",
            "--default-mode",
            "sfu",
        ]);
        let c = cli.config();
        assert_eq!(c.ice.turn_urls, ["turn:a:3478", "turns:b:5349"]);
        assert_eq!(c.default_mode, Mode::Sfu);
        assert!(c.cors_origins.is_empty());
        assert!(c.sfu.is_none());
        let c = Cli::parse_from(["signal-server", "--sfu", "--sfu-ports", "50000-50010"]).config();
        let sfu = c.sfu.expect("enabled");
        assert_eq!((sfu.port_min, sfu.port_max), (50000, 50010));
        assert!(!sfu.ice_tcp);
        assert_eq!(sfu.engine, sfu::SfuEngine::Shard, "the shard by default");
        let c = Cli::parse_from(["signal-server", "--sfu", "--sfu-tcp"]).config();
        let sfu = c.sfu.expect("enabled");
        assert!(sfu.ice_tcp);
        assert_eq!(sfu.engine, sfu::SfuEngine::Shard, "ICE-TCP on the shard");
        let c = Cli::parse_from(["signal-server", "--sfu", "--sfu-engine", "webrtc"]).config();
        assert_eq!(c.sfu.expect("enabled").engine, sfu::SfuEngine::Webrtc);
        assert!(Cli::try_parse_from(["signal-server", "--sfu-engine", "fast"]).is_err());
        assert!(Cli::try_parse_from(["signal-server", "--sfu-ports", "9-3"]).is_err());
    }

    #[test]
    fn redis_url_and_self_signed_tls() {
        assert!(Cli::parse_from(["signal-server"]).config().redis.is_none());
        assert!(
            Cli::parse_from(["signal-server", "--redis-url", " "])
                .config()
                .redis
                .is_none()
        );
        let url = |args: &[&str]| {
            Cli::parse_from(args)
                .config()
                .redis
                .expect("redis configured")
                .url
        };
        let u = "rediss://h:1/";
        assert_eq!(url(&["s", "--redis-url", u]), u);
        assert_eq!(
            url(&["s", "--redis-url", u, "--redis-tls-insecure"]),
            "rediss://h:1/#insecure"
        );
        let plain = "redis://h:1";
        assert_eq!(
            url(&["s", "--redis-url", plain, "--redis-tls-insecure"]),
            plain
        );
    }
}
