//! A private nginx on 127.0.0.1 for the updater and mirror tests: one process (`master_process off`), a free
//! loopback port, a given document root, and an access log of `METHOD URI STATUS $body_bytes_sent "RANGE"
//! "IMS" "UA"` lines, so a test can say what a client asked for and how many bytes it was sent.
//!
//! The site is the one README.md's `sensor db mirror` section shows: dotfiles denied (the mirror's state
//! and temporaries), `Cache-Control: no-cache` for `*.cvd`, long-lived for `*.cdiff`; byte ranges are
//! nginx's default. `/m429/` answers every request 429 with `Retry-After: 3600`, `/m403/` 403. Never:
//! listens anywhere but loopback.

use crate::oracle::{find_in_path, skip_or_fail};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nginx {
    child: Child,
    pub port: u16,
    pub root: PathBuf,
    log: PathBuf,
    dir: tempfile::TempDir,
}

/// One access-log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub uri: String,
    pub status: u16,
    pub bytes: u64,
    pub user_agent: String,
}

impl Nginx {
    /// Serves `root` (created if missing); `None` after [`skip_or_fail`] when nginx is not installed.
    pub fn serve(test: &str, root: &Path) -> Option<Nginx> {
        let bin = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .or_else(|| find_in_path("nginx"));
        let Some(bin) = bin else {
            skip_or_fail(
                test,
                "nginx not installed (Debian package nginx-light; `cargo xtask setup`)",
            );
            return None;
        };
        std::fs::create_dir_all(root).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
               log_format t '$request_method $uri $status $body_bytes_sent \"$http_range\" \
             \"$http_if_modified_since\" \"$http_user_agent\"';\n\
               access_log {d}/access.log t;\n\
               client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               server {{\n\
                 listen 127.0.0.1:{port};\n    root {root};\n\
                 location ^~ /m429/ {{ add_header Retry-After 3600 always; return 429; }}\n\
                 location ^~ /m403/ {{ return 403; }}\n\
                 location ~ /\\. {{ deny all; }}\n\
                 location ~ \\.cvd$ {{ add_header Cache-Control \"no-cache\"; }}\n\
                 location ~ \\.cdiff$ {{ add_header Cache-Control \"public, max-age=31536000, immutable\"; }}\n\
               }}\n\
             }}\n",
            root = root.display()
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let n = Nginx {
            child,
            port,
            root: root.to_path_buf(),
            log: dir.path().join("access.log"),
            dir,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nginx did not start: {}",
                std::fs::read_to_string(n.dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(n)
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The access log's lines so far, as written: `METHOD URI STATUS BYTES "RANGE" "IMS" "UA"`.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The access log so far.
    pub fn requests(&self) -> Vec<Request> {
        self.lines()
            .iter()
            .map(|l| {
                let mut w = l.splitn(5, ' ');
                let mut next = || w.next().unwrap_or_default().to_string();
                let (method, uri, status, bytes, rest) = (next(), next(), next(), next(), next());
                Request {
                    method,
                    uri,
                    status: status.parse().unwrap_or(0),
                    bytes: bytes.parse().unwrap_or(0),
                    user_agent: rest
                        .rsplit_once(" \"")
                        .map(|(_, ua)| ua.trim_end_matches('"').to_string())
                        .unwrap_or_default(),
                }
            })
            .collect()
    }
}

impl Request {
    /// `GET /test.cvd 206`.
    pub fn short(&self) -> String {
        format!("{} {} {}", self.method, self.uri, self.status)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
