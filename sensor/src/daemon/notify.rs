//! systemd's notify protocol (sd_notify): READY=1 once protecting, WATCHDOG=1 from the main loop, STOPPING=1.
//! A datagram to $NOTIFY_SOCKET; silently nothing when not run by systemd.

use std::os::unix::net::UnixDatagram;

pub struct Notifier {
    target: Option<(UnixDatagram, std::path::PathBuf)>,
}

impl Notifier {
    pub fn from_env() -> Notifier {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|p| {
            // Abstract sockets ('@name') are not reachable through a path; systemd uses a path by default.
            if p.to_string_lossy().starts_with('@') {
                return None;
            }
            UnixDatagram::unbound().ok().map(|s| (s, p.into()))
        });
        Notifier { target }
    }

    pub fn send(&self, msg: &str) {
        if let Some((sock, path)) = &self.target {
            let _ = sock.send_to(msg.as_bytes(), path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_the_socket_named_in_the_environment() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            target: Some((UnixDatagram::unbound().unwrap(), path)),
        };
        n.send("READY=1");
        let mut buf = [0u8; 16];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
    }
}
