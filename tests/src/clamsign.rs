//! Detached `.sign` files for the updater's tests (engine/src/cvd/UPDATE.md §3), made with Debian's
//! `openssl` command so that what the sensor verifies comes from a producer it shares no code with: a test
//! root CA, a signing certificate it issued (codeSigning, as a release key would be), and `openssl cms
//! -sign -binary -md sha256` signatures, detached, PEM, armour stripped into a `#clamsign-1.0` line.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A root CA, the signer it issued, and a second, unrelated CA that issued nothing we trust; all in a
/// temporary directory that lives as long as this.
pub struct Pki {
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl command (Debian package openssl; `cargo xtask setup` installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    /// Makes the certificates (RSA 2048, ten years).
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("signer.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n",
        )
        .unwrap();
        for (ca, cn) in [
            ("ca", "Sensor Test Root CA"),
            ("other-ca", "Unrelated Test CA"),
        ] {
            openssl(
                d,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "3650",
                    "-keyout",
                    &format!("{ca}.key"),
                    "-out",
                    &format!("{ca}.crt"),
                    "-subj",
                    &format!("/CN={cn}"),
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            );
        }
        for (signer, ca, cn) in [
            ("signer", "ca", "Sensor Test Database Signer"),
            ("rogue", "other-ca", "Rogue Signer"),
        ] {
            openssl(
                d,
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    &format!("{signer}.key"),
                    "-out",
                    &format!("{signer}.csr"),
                    "-subj",
                    &format!("/CN={cn}"),
                ],
            );
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{signer}.csr"),
                    "-CA",
                    &format!("{ca}.crt"),
                    "-CAkey",
                    &format!("{ca}.key"),
                    "-CAcreateserial",
                    "-days",
                    "3650",
                    "-extfile",
                    "signer.ext",
                    "-out",
                    &format!("{signer}.crt"),
                ],
            );
        }
        std::fs::create_dir(d.join("certs")).unwrap();
        std::fs::copy(d.join("ca.crt"), d.join("certs/clamav.crt")).unwrap();
        Pki { dir }
    }

    /// The certificate directory to give as CVDCertsDirectory: the test root CA as `clamav.crt`.
    pub fn certs_dir(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// A `.sign` file for `data`, signed by the certificate the test CA issued.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        self.sign_as("signer", data)
    }

    /// A `.sign` file for `data` by a certificate the certificate directory does not lead to.
    pub fn sign_rogue(&self, data: &[u8]) -> Vec<u8> {
        self.sign_as("rogue", data)
    }

    fn sign_as(&self, who: &str, data: &[u8]) -> Vec<u8> {
        let d = self.dir.path();
        std::fs::write(d.join("data"), data).unwrap();
        openssl(
            d,
            &[
                "cms",
                "-sign",
                "-binary",
                "-md",
                "sha256",
                "-outform",
                "PEM",
                "-signer",
                &format!("{who}.crt"),
                "-inkey",
                &format!("{who}.key"),
                "-in",
                "data",
                "-out",
                "data.p7",
            ],
        );
        let pem = std::fs::read_to_string(d.join("data.p7")).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        // min_flevel : max_flevel (empty) : format : fingerprint : signature (UPDATE.md §3).
        format!(
            "#clamsign-1.0\n# test signature\n1::pkcs7-pem:{}:{body}\n",
            fingerprint(who)
        )
        .into_bytes()
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

/// A stand-in for the public key fingerprint field: the verifier does not use it.
fn fingerprint(who: &str) -> String {
    hex::encode(who.as_bytes())
}
