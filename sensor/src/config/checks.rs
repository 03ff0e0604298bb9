//! The bounds and look-ups every source of a setting applies (clamd.conf, the TOML file, the flags), so
//! that a value is refused with the same words wherever it was written. Each returns the reason as text;
//! the caller adds where the value came from (`FILE:LINE: key`, `--flag`). Pure: reads nothing but the
//! user database (`uid_of`), opens and starts nothing.

use std::ffi::CString;
use std::net::SocketAddr;

pub(super) fn check_syslog(target: &str) -> Result<(), String> {
    target
        .parse::<crate::audit::SyslogTarget>()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

pub(super) fn check_facility(f: &str) -> Result<(), String> {
    f.parse::<crate::audit::Facility>()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Most scanner threads (`threads`, OnAccessMaxThreads, `--threads`, and `sensor scan --threads`). Scans are
/// CPU-bound, so threads beyond the cores only help while others wait on reads; and the kernel refuses
/// far fewer than a typo asks for (`threads = 100000` ran out of memory maps near 16000 and
/// died), so a count it could refuse is a configuration error, said at start.
pub(crate) const MAX_THREADS: usize = 1024;

/// Largest scan queue: its slots are allocated at start (`queue_size = 1000000000000` once aborted
/// on a 40 TB allocation). A million waiting events is minutes of scanning already; the kernel's own
/// fanotify queue holds 16384.
const MAX_QUEUE_SIZE: usize = 1 << 20;

pub(crate) fn check_threads(n: usize) -> Result<(), String> {
    if n == 0 {
        return Err("must be at least 1".into());
    }
    if n > MAX_THREADS {
        return Err(format!("must be at most {MAX_THREADS}, got {n}"));
    }
    Ok(())
}

pub(super) fn check_queue_size(n: usize) -> Result<(), String> {
    if !(16..=MAX_QUEUE_SIZE).contains(&n) {
        return Err(format!(
            "must be at least 16 and at most {MAX_QUEUE_SIZE}, got {n}"
        ));
    }
    Ok(())
}

pub(super) fn check_deadline(secs: f64) -> Result<(), String> {
    if !(secs > 0.0 && secs <= 600.0) {
        return Err(format!(
            "must be more than 0 and at most 600 seconds, got {secs}"
        ));
    }
    Ok(())
}

/// The uid of user `name` (getpwnam_r: /etc/passwd and whatever NSS adds); `None` if there is none.
pub(super) fn uid_of(name: &str) -> Result<Option<u32>, String> {
    let cname = CString::new(name).map_err(|_| format!("bad user name '{name}'"))?;
    let mut buf = vec![0 as libc::c_char; 1024];
    loop {
        // SAFETY: zeroed passwd is a valid out-parameter; the buffer outlives the call and its length is
        // passed; `result` is only compared with null.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 {
            return Err(format!(
                "cannot look up user '{name}': {}",
                std::io::Error::from_raw_os_error(rc)
            ));
        }
        return Ok((!result.is_null()).then_some(pwd.pw_uid));
    }
}
/// The metrics address: an IP and a port, loopback unless `allow_remote`.
pub(super) fn metrics_addr(text: &str, allow_remote: bool) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text.parse().map_err(|_| {
        format!("'{text}' is not an IP address and port (e.g. 127.0.0.1:9464 or [::1]:9464)")
    })?;
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(format!(
            "{addr} is not a loopback address: the metrics have no authentication; listen on \
             127.0.0.1 or [::1], or allow it explicitly (--metrics-allow-remote, metrics_allow_remote = true)"
        ));
    }
    Ok(addr)
}
