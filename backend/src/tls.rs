//! TLS (SPEC §13): the certificate chain and key of `--tls-cert` and
//! `--tls-key`, served by rustls (ring) with HTTP/2 and HTTP/1.1 offered by
//! ALPN. The pair in force sits behind a lock that every handshake reads, so
//! [`Certificates::reload`] (SIGHUP, see main.rs) changes what new
//! connections get while open ones keep the session they made; a pair that
//! cannot be used leaves the one in force alone.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// The protocols offered by ALPN, preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why a certificate and key pair cannot be served; each names the flag and
/// the file, so an operator knows which one to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Only one of the two flags.
    #[error("{given} needs {missing}: give both, or neither to serve plain HTTP")]
    Incomplete {
        /// The flag given.
        given: &'static str,
        /// The flag missing.
        missing: &'static str,
    },
    /// The file could not be read.
    #[error("cannot read {flag} {path}: {source}")]
    Unreadable {
        /// `--tls-cert` or `--tls-key`.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file holds no PEM block of the kind wanted, or a broken one.
    #[error("{flag} {path} holds no {wanted} in PEM: {detail}")]
    Unparsable {
        /// `--tls-cert` or `--tls-key`.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// "certificate" or "private key".
        wanted: &'static str,
        /// What the PEM reader said.
        detail: String,
    },
    /// The key is not one rustls can sign with, or is not the certificate's.
    #[error("the key of --tls-key {key} cannot serve the certificate of --tls-cert {cert}: {detail}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        detail: String,
    },
}

/// The two files of a certificate and key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, server certificate first (PEM).
    pub cert: PathBuf,
    /// The private key of the server certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The pair served to new connections, re-read on demand.
pub struct Certificates {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates").field("files", &self.files).finish_non_exhaustive()
    }
}

impl Certificates {
    /// Reads the pair; refuses one that cannot serve (unreadable, unparsable,
    /// or a key that is not the certificate's).
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        // ring, named here: the build also has aws-lc-rs (through other
        // crates), and rustls picks no process default when both are in.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let current = read_pair(&files, &provider)?;
        Ok(Arc::new(Self { files, provider, current: RwLock::new(current) }))
    }

    /// Reads both files again: on success new connections get the new pair;
    /// on failure the pair in force stays, and the error says why.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = read_pair(&self.files, &self.provider)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// The files this pair is read from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The SHA-256 fingerprint of the server certificate in force, as
    /// `openssl x509 -noout -fingerprint -sha256` shows it: what the logs
    /// name, so an operator can tell which pair is served.
    pub fn fingerprint(&self) -> String {
        let current = Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner));
        current.cert.first().map(|cert| fingerprint(cert)).unwrap_or_default()
    }

    /// The acceptor for the accept loop: TLS 1.2 and 1.3, this pair, and
    /// HTTP/2 or HTTP/1.1 by ALPN.
    pub fn acceptor(self: &Arc<Self>) -> TlsAcceptor {
        let builder = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .expect("ring's default provider supports the default protocol versions");
        let resolver: Arc<dyn ResolvesServerCert> = Arc::clone(self) as Arc<dyn ResolvesServerCert>;
        let mut config = builder.with_no_client_auth().with_cert_resolver(resolver);
        config.alpn_protocols = ALPN.iter().map(|protocol| protocol.to_vec()).collect();
        TlsAcceptor::from(Arc::new(config))
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner)))
    }
}

fn read_pair(files: &TlsFiles, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_pem = read(&files.cert, "--tls-cert")?;
    let key_pem = read(&files.key, "--tls-key")?;
    let unparsable = |flag, path: &Path, wanted, detail: String| TlsError::Unparsable {
        flag,
        path: path.to_owned(),
        wanted,
        detail,
    };
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| unparsable("--tls-cert", &files.cert, "certificate", pem_error(&error)))?;
    if chain.is_empty() {
        return Err(unparsable("--tls-cert", &files.cert, "certificate", "no CERTIFICATE block".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| {
        let detail = match error {
            pem::Error::NoItemsFound => "no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block".into(),
            error => pem_error(&error),
        };
        unparsable("--tls-key", &files.key, "private key", detail)
    })?;
    // Loads the key and compares its public half with the certificate's.
    let pair = CertifiedKey::from_der(chain, key, provider).map_err(|error| TlsError::Mismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
        detail: match error {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                "it is the key of another certificate".into()
            }
            error => error.to_string(),
        },
    })?;
    Ok(Arc::new(pair))
}

/// A PEM reader's complaint in words (its own Display shows lines as bytes).
fn pem_error(error: &pem::Error) -> String {
    match error {
        pem::Error::MissingSectionEnd { end_marker } => {
            format!("no -----END {}----- line", String::from_utf8_lossy(end_marker))
        }
        pem::Error::IllegalSectionStart { line } => {
            format!("a broken BEGIN line {:?}", String::from_utf8_lossy(line))
        }
        error => error.to_string(),
    }
}

fn read(path: &Path, flag: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Unreadable { flag, path: path.to_owned(), source })
}

/// The SHA-256 fingerprint of a certificate (DER), as OpenSSL writes it
/// (upper-case hex pairs joined by colons).
pub fn fingerprint(cert: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(cert).iter().map(|byte| format!("{byte:02X}")).collect::<Vec<_>>().join(":")
}

/// Whether serving plain HTTP on `address` deserves a warning: anything but
/// loopback carries passwords and tokens over a network in clear.
pub fn plain_http_exposed(address: SocketAddr) -> bool {
    !address.ip().to_canonical().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for 127.0.0.1 and its key, written as PEM files in `dir`.
    fn pair(dir: &Path, name: &str) -> (TlsFiles, String) {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let files = TlsFiles { cert: dir.join(format!("{name}.crt")), key: dir.join(format!("{name}.key")) };
        std::fs::write(&files.cert, made.cert.pem()).unwrap();
        std::fs::write(&files.key, made.signing_key.serialize_pem()).unwrap();
        (files, fingerprint(made.cert.der()))
    }

    #[test]
    fn a_pair_loads_and_reloads_and_a_bad_one_keeps_the_pair_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let (files, first) = pair(dir.path(), "served");
        let certificates = Certificates::load(files.clone()).unwrap();
        assert_eq!(certificates.fingerprint(), first);

        let (other, second) = pair(dir.path(), "other");
        std::fs::copy(&other.cert, &files.cert).unwrap();
        std::fs::copy(&other.key, &files.key).unwrap();
        certificates.reload().unwrap();
        assert_eq!(certificates.fingerprint(), second, "reloaded");

        // A certificate with another's key, a missing key, garbage: each
        // refused, naming the file, and the pair in force stays.
        let (third, _) = pair(dir.path(), "third");
        std::fs::copy(&third.cert, &files.cert).unwrap();
        let error = certificates.reload().unwrap_err().to_string();
        assert!(error.contains("--tls-key") && error.contains("served.key") && error.contains("served.crt"), "{error}");
        assert_eq!(certificates.fingerprint(), second);

        std::fs::remove_file(&files.key).unwrap();
        let error = certificates.reload().unwrap_err().to_string();
        assert!(error.starts_with("cannot read --tls-key ") && error.contains("served.key"), "{error}");

        std::fs::copy(&third.key, &files.key).unwrap();
        std::fs::write(&files.cert, "not a certificate\n").unwrap();
        let error = certificates.reload().unwrap_err().to_string();
        assert!(error.starts_with("--tls-cert ") && error.contains("holds no certificate"), "{error}");
        std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n").unwrap();
        let error = certificates.reload().unwrap_err().to_string();
        assert!(error.starts_with("--tls-cert ") && error.contains("holds no certificate"), "{error}");
        std::fs::copy(&third.cert, &files.cert).unwrap();
        std::fs::write(&files.key, "").unwrap();
        let error = certificates.reload().unwrap_err().to_string();
        assert!(error.starts_with("--tls-key ") && error.contains("holds no private key"), "{error}");
        assert_eq!(certificates.fingerprint(), second, "still the last good pair");
    }

    #[test]
    fn a_pair_that_cannot_serve_is_refused_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let (files, _) = pair(dir.path(), "a");
        let missing = TlsFiles { cert: dir.path().join("missing.crt"), ..files.clone() };
        let error = Certificates::load(missing).unwrap_err().to_string();
        assert!(error.starts_with("cannot read --tls-cert ") && error.contains("missing.crt"), "{error}");
        let (other, _) = pair(dir.path(), "b");
        let error = Certificates::load(TlsFiles { key: other.key, ..files }).unwrap_err().to_string();
        assert!(error.contains("cannot serve the certificate"), "{error}");
    }

    #[test]
    fn fingerprints_read_as_openssl_writes_them() {
        // SHA-256 of nothing: e3b0c442…7852b855.
        let empty = fingerprint(b"");
        assert!(empty.starts_with("E3:B0:C4:42:") && empty.ends_with(":78:52:B8:55"), "{empty}");
        assert_eq!(empty.len(), 32 * 3 - 1);
    }

    #[test]
    fn plain_http_is_exposed_on_every_address_but_loopback() {
        for quiet in ["127.0.0.1:3000", "127.0.0.2:3000", "[::1]:3000", "[::ffff:127.0.0.1]:3000"] {
            assert!(!plain_http_exposed(quiet.parse().unwrap()), "{quiet}");
        }
        for exposed in ["0.0.0.0:3000", "[::]:3000", "192.0.2.7:3000", "[2001:db8::1]:443", "[::ffff:192.0.2.7]:80"] {
            assert!(plain_http_exposed(exposed.parse().unwrap()), "{exposed}");
        }
    }
}
