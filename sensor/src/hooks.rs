//! Test hooks: environment variables that make `sensor run` behave as on another kernel or with a stuck
//! scanner, for the end-to-end tests. Compiled in only with the `test-hooks` cargo feature, which the tests'
//! build of the binary turns on (`sensor_tests::oracle::sensor_bin`) and release builds do not have: a
//! production sensor ignores these variables.

use std::time::Duration;

/// Behave as on a kernel without CONFIG_FANOTIFY_ACCESS_PERMISSIONS (the permission marks are refused), to
/// exercise the notify-only fallback on kernels that have it.
pub const NO_PERMISSION_EVENTS: &str = "SENSOR_TEST_NO_PERMISSION_EVENTS";

/// Notify-only mode treats every root as one fanotify cannot watch (as on a filesystem that refuses
/// filesystem marks), so the eBPF open prefilter must cover it.
pub const UNWATCHABLE: &str = "SENSOR_TEST_FANOTIFY_UNWATCHABLE";

/// Every scan first sleeps this many milliseconds, to prove the deadline watchdog answers for a worker
/// that is stuck.
pub const SCAN_DELAY_MS: &str = "SENSOR_TEST_SCAN_DELAY_MS";

/// The eBPF layer is not loaded, as on a kernel without BPF.
pub const NO_BPF: &str = "SENSOR_TEST_NO_BPF";

/// Whether hook `name` is set (never without the `test-hooks` feature).
pub fn set(name: &str) -> bool {
    cfg!(feature = "test-hooks") && std::env::var_os(name).is_some()
}

/// The scan delay of [`SCAN_DELAY_MS`], if set.
pub fn scan_delay() -> Option<Duration> {
    if !cfg!(feature = "test-hooks") {
        return None;
    }
    std::env::var(SCAN_DELAY_MS)
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
}

/// A file holding test public keys for `sensor db update` (`header <modulus> <exponent>`, decimal): the
/// end-to-end tests sign their own CVDs, as ClamAV's private key is not theirs to use. It replaces
/// ClamAV's key for every check the updater makes (download verification, test load, recompile).
pub const CVD_KEY: &str = "SENSOR_TEST_CVD_KEY";

/// The path of [`CVD_KEY`], if set.
pub fn cvd_key() -> Option<std::path::PathBuf> {
    if !cfg!(feature = "test-hooks") {
        return None;
    }
    std::env::var_os(CVD_KEY).map(std::path::PathBuf::from)
}

/// `IP:PORT` of a stub DNS server that `sensor db update` asks instead of the nameservers of
/// `/etc/resolv.conf`, so the end-to-end tests can answer the version TXT record on loopback.
pub const DNS_SERVER: &str = "SENSOR_TEST_DNS_SERVER";

/// The address of [`DNS_SERVER`], if set and valid.
pub fn dns_server() -> Option<std::net::SocketAddr> {
    if !cfg!(feature = "test-hooks") {
        return None;
    }
    std::env::var(DNS_SERVER).ok()?.parse().ok()
}
