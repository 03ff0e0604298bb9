//! What the clamd protocol server is told (clamd.conf(5) names; defaults are clamd 1.4's unless said).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct ClamdSettings {
    /// `LocalSocket`.
    pub local_socket: Option<PathBuf>,
    /// `LocalSocketMode` (octal); default 0666, as clamd's "world readable and writable".
    pub local_socket_mode: u32,
    /// `LocalSocketGroup`: the socket's group (a name or a number).
    pub local_socket_group: Option<String>,
    /// `TCPSocket` on each `TCPAddr` (default 127.0.0.1, where clamd's is every address: a scanner
    /// reachable from the network is opted into, with `allow_remote`).
    pub tcp: Vec<SocketAddr>,
    /// `MaxThreads`: scans at once.
    pub max_threads: usize,
    /// `MaxConnectionQueueLength`: the listen backlog.
    pub max_connection_queue_length: u32,
    /// `StreamMaxLength`: the most bytes one INSTREAM may send.
    pub stream_max_length: u64,
    /// `ReadTimeout`: silence allowed while a command's data (INSTREAM chunks) arrives.
    pub read_timeout: Duration,
    /// `CommandReadTimeout`: silence allowed before the first command.
    pub command_read_timeout: Duration,
    /// `SendBufTimeout`: how long a reply may wait for a client that does not read.
    pub send_buf_timeout: Duration,
    /// `IdleTimeout`: silence allowed between the commands of an IDSESSION.
    pub idle_timeout: Duration,
    /// `MaxQueue`: requests queued or being scanned; connections past it wait unread.
    pub max_queue: usize,
    /// `ExcludePath`: regexes; matching files and directories are not scanned by path commands (and an
    /// fd passed by FILDES whose path matches is not either).
    pub exclude_path: Vec<String>,
    /// `CrossFilesystems`.
    pub cross_filesystems: bool,
    /// `FollowDirectorySymlinks`, `FollowFileSymlinks`.
    pub follow_dir_symlinks: bool,
    pub follow_file_symlinks: bool,
    /// `MaxDirectoryRecursion`.
    pub max_dir_recursion: u32,
    /// `AllowAllMatchScan`.
    pub allow_all_match_scan: bool,
    /// Whether SHUTDOWN and QUIT stop the sensor: only when it serves the protocol alone (`--no-gate`).
    /// With the gate on, a client that may scan must not be able to end the host's protection.
    pub shutdown_allowed: bool,
    /// The scan limits (MaxScanSize, MaxFileSize, MaxRecursion, MaxFiles, MaxScanTime, the Scan*
    /// switches): clamd.conf's, without the on-access deadline the gate's scans are held to.
    pub limits: engine::Limits,
}

impl Default for ClamdSettings {
    fn default() -> Self {
        ClamdSettings {
            local_socket: None,
            local_socket_mode: 0o666,
            local_socket_group: None,
            tcp: Vec::new(),
            max_threads: 10,
            max_connection_queue_length: 200,
            stream_max_length: 100 << 20,
            read_timeout: Duration::from_secs(120),
            command_read_timeout: Duration::from_secs(30),
            send_buf_timeout: Duration::from_millis(500),
            idle_timeout: Duration::from_secs(30),
            max_queue: 100,
            exclude_path: Vec::new(),
            cross_filesystems: true,
            follow_dir_symlinks: false,
            follow_file_symlinks: false,
            max_dir_recursion: 15,
            allow_all_match_scan: true,
            shutdown_allowed: true,
            limits: engine::Limits::default(),
        }
    }
}

impl ClamdSettings {
    /// Whether anything is to be served.
    pub fn serves(&self) -> bool {
        self.local_socket.is_some() || !self.tcp.is_empty()
    }
}
