//! The side services `Sensor::build` starts around the gate when configured: the control socket and metrics
//! servers, and directory-move reporting. One that cannot start is a warning, never a failed start.

use super::moves;
use crate::audit::enricher::Trail;
use crate::config::RunConfig;
use crate::gate::worker;
use crate::observe::{control_server, metrics, status};
use crate::service::Service;
use std::path::PathBuf;
use std::sync::Arc;

/// The control socket and metrics servers (bound at start); one that cannot be served is a warning.
pub(super) fn start_servers(
    control_socket: Option<control_server::Bound>,
    metrics_listener: Option<std::net::TcpListener>,
    status: &Arc<status::Status>,
    trail: Option<Arc<Trail>>,
) -> Vec<Service> {
    let mut servers = Vec::new();
    if let Some(b) = control_socket {
        let ctx = control_server::Context {
            status: Arc::clone(status),
            trail,
        };
        match control_server::start(b, ctx) {
            Ok(s) => servers.push(s),
            Err(e) => eprintln!("sensor run: warning: control socket not served: {e}"),
        }
    }
    if let Some(l) = metrics_listener {
        let at = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
        match metrics::start(l, Arc::clone(status)) {
            Ok(s) => {
                eprintln!("sensor run: metrics at http://{at}/metrics");
                servers.push(s);
            }
            Err(e) => eprintln!("sensor run: warning: metrics not served: {e}"),
        }
    }
    servers
}

/// Directory moves into and out of the trees, told to the log and the audit trail (when configured).
pub(super) fn start_moves(
    cfg: &RunConfig,
    roots: &[PathBuf],
    shared: &Arc<worker::Shared>,
) -> (Option<Arc<moves::Moves>>, Option<Service>) {
    let moves = match cfg.dir_moves.then(moves::Moves::new) {
        None => return (None, None),
        Some(Ok(m)) => m,
        Some(Err(e)) => {
            eprintln!(
                "sensor run: warning: directory moves are not reported (fanotify FAN_RENAME: {e})"
            );
            return (None, None);
        }
    };
    for r in roots {
        if let Err(e) = moves.mark(r) {
            eprintln!(
                "sensor run: warning: directory moves on {} are not reported: {e}",
                r.display()
            );
        }
    }
    let moves = Arc::new(moves);
    let outlets = moves::Outlets {
        counters: Arc::clone(&shared.counters),
        filter: Arc::clone(&shared.filter),
        reports: shared.reports.waiting(),
        trail: shared.trail.clone(),
    };
    let reporter = moves::start(Arc::clone(&moves), outlets)
        .map_err(|e| eprintln!("sensor run: warning: directory moves are not reported: {e}"))
        .ok();
    (Some(moves), reporter)
}
