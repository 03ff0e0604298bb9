//! The three keys that vouch for ClamAV's databases (UPDATE.md §1.3, §1.4; FORMAT.md §2): the CVD header's
//! MD5 signature, the `.info` manifest's PSS `DSIG:` line, and each cdiff's PSS signature. ClamAV's by
//! default; tests swap in their own.

use super::dsig::PublicKey;
use super::pss::PssKey;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub(crate) header: PublicKey,
    pub(crate) info: PssKey,
    pub(crate) cdiff: PssKey,
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
