//! Shared test kit: test-data generation and helpers for end-to-end tests.
//!
//! * [`control`]: `sensor status` and metrics scraping helpers.
//! * [`clamd`]: Debian's clamd and the sensor serving clamd's protocol, side by side, and their clients.
//! * [`clamsign`]: a test CA and detached `.sign` files made with the `openssl` command.
//! * [`cvd`]: signed `.cvd` containers (test key) for the updater's tests.
//! * [`nginx`]: a private nginx on loopback serving a mirror directory, and its access log.
//! * [`gen`]: deterministic database + file corpus generator with a manifest of expected verdicts.
//! * [`pe`]: a small PE writer for executable-format tests.
//! * [`oracle`]: locating `clamscan` / the `sensor` binary, skip-or-fail policy for missing tools.
//! * [`results`]: parsing clamscan-style result lines into a map path -> verdict.
//!
//! Behaviours of clamscan 1.4.6 that the generator relies on are recorded in `tests/ORACLE.md`.

pub mod archive;
pub mod bomb;
pub mod clamd;
pub mod clamsign;
pub mod control;
pub mod cvd;
pub mod gate;
pub mod gen;
pub mod nginx;
pub mod oracle;
pub mod pe;
pub mod results;
pub mod toy_packer;
