//! The signature engine: parse ClamAV database text, compile it once into an immutable [`Database`],
//! and scan byte slices with per-thread [`Scanner`]s that borrow it.
//!
//! Owns: database formats, matching, unpacking, verdict order. Never: threads, files other than databases
//! and the one being scanned, kernel code.
//! Data flows one way: `db` (parse) -> `compile` (build) -> `scan` (type -> `unpack` -> match, recursively ->
//! verdict).

pub mod compile;
mod containers;
pub mod cvd;
mod database;
pub mod db;
mod error;
pub mod exefmt;
mod image;
pub mod logic;
pub mod matcher;
pub mod normalize;
pub mod scan;
mod sources;
pub mod unpack;
mod yara;

pub use compile::{Compiler, FileStats, Parallel, Sequential};
pub use cvd::{Keys, PatchError, PatchOutcome, PssKey, PssSigner, PublicKey};
pub use database::Database;
pub use error::{LineError, LoadError};
pub use image::{ImageError, FORMAT_VERSION};
pub use scan::{DeepOptions, Detection, Report, ScanOptions, Scanner, SharedScanner};
pub use sources::{is_compiled, load, load_with_keys, COMPILED_EXTENSION};
pub use unpack::{Limit, Limits};

/// The functionality level this engine declares; `MinFL`/`MaxFL` and ldb `Engine:` ranges are compared with it.
/// It is clamscan 1.4.6's level (bisected with MinFL, tests/ORACLE.md §1), so that a database written for it
/// loads the same signatures here.
pub const FUNCTIONALITY_LEVEL: u32 = 216;
