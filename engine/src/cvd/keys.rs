//! The three keys that vouch for ClamAV's databases (UPDATE.md §1.3, §1.4; FORMAT.md §2): the CVD header's
//! MD5 signature, the `.info` manifest's PSS `DSIG:` line, and each cdiff's PSS signature. ClamAV's by
//! default; tests swap in their own. Beside them, the SHA-256s of whole `.cvd` and `.cdiff` files that a
//! detached `.sign` file already vouched for (UPDATE.md §3, checked by the sensor against its certificate
//! directory): such a file needs no key of these.

use super::dsig::PublicKey;
use super::pss::PssKey;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub(crate) header: PublicKey,
    pub(crate) info: PssKey,
    pub(crate) cdiff: PssKey,
    pub(crate) vouched: BTreeSet<[u8; 32]>,
}

impl Default for Keys {
    fn default() -> Self {
        Self::clamav()
    }
}

impl Keys {
    /// ClamAV's published keys.
    pub fn clamav() -> Keys {
        Keys {
            header: PublicKey::clamav(),
            info: PssKey::clamav_info(),
            cdiff: PssKey::clamav_cdiff(),
            vouched: BTreeSet::new(),
        }
    }

    /// These keys with another key for the CVD header's MD5 signature.
    pub fn with_header_key(mut self, key: PublicKey) -> Keys {
        self.header = key;
        self
    }

    /// These keys with another key for the `.info` `DSIG:` line.
    pub fn with_info_key(mut self, key: PssKey) -> Keys {
        self.info = key;
        self
    }

    /// These keys with another key for cdiffs.
    pub fn with_cdiff_key(mut self, key: PssKey) -> Keys {
        self.cdiff = key;
        self
    }

    /// These keys, trusting also the whole file whose SHA-256 is `digest` (a `.sign` file vouched for it).
    pub fn with_vouched(mut self, digest: [u8; 32]) -> Keys {
        self.vouched.insert(digest);
        self
    }

    /// Whether `bytes`, a whole `.cvd` or `.cdiff`, is one a `.sign` file vouched for. Hashes only when
    /// some file is vouched for: the common case costs nothing.
    pub fn vouches_for(&self, bytes: &[u8]) -> bool {
        !self.vouched.is_empty()
            && self
                .vouched
                .contains(&<[u8; 32]>::from(Sha256::digest(bytes)))
    }

    pub fn header(&self) -> &PublicKey {
        &self.header
    }

    pub fn info(&self) -> &PssKey {
        &self.info
    }

    pub fn cdiff(&self) -> &PssKey {
        &self.cdiff
    }
}
