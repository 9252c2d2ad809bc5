//! TLS to PostgreSQL, as libpq's `sslmode` and `sslrootcert` ask for it.
//!
//! | `sslmode` | encrypted | server certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (the default) | when the server offers it | no |
//! | `require` | always | only when `sslrootcert` names a file: its chain, as `verify-ca` |
//! | `verify-ca` | always | its chain to a root in `sslrootcert` |
//! | `verify-full` | always | its chain, and that it names the host connected to |
//!
//! As with libpq, `prefer` and `require` without a root protect against
//! eavesdropping only, not against a server that pretends to be the
//! database; `verify-full` protects against both. Unlike libpq, no file is
//! read from `~/.postgresql`: `verify-ca` and `verify-full` need
//! `sslrootcert=FILE` (PEM, one or more certificates). The TLS is rustls
//! (with ring): nothing from the system's OpenSSL is needed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// `sslmode`, as libpq spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    pub fn parse(value: &str) -> Option<Mode> {
        Some(match value {
            "disable" => Mode::Disable,
            "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            _ => return None,
        })
    }

    /// What the driver is told: whether to ask for TLS, and whether to
    /// give up without it.
    pub fn driver(self) -> SslMode {
        match self {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }
}

/// The TLS settings of a connection string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub mode: Mode,
    pub root_cert: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            mode: Mode::Prefer,
            root_cert: None,
        }
    }
}

/// What a server's certificate is checked against.
#[derive(Debug)]
enum Check {
    /// Nothing: the connection is encrypted, the server not authenticated.
    Nothing,
    /// Its chain to one of the roots.
    Chain(Arc<WebPkiServerVerifier>),
    /// Its chain and its name.
    ChainAndName(Arc<WebPkiServerVerifier>),
}

/// The connector for `settings`, or None when TLS is off. Errors name the
/// root certificate file and what is wrong with it.
pub fn connector(settings: &Settings) -> Result<Option<MakeRustlsConnect>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = match &settings.root_cert {
        Some(path) => Some(roots(path, &provider)?),
        None => None,
    };
    let check = match (settings.mode, roots) {
        (Mode::Disable, _) => return Ok(None),
        (Mode::Prefer, _) | (Mode::Require, None) => Check::Nothing,
        (Mode::Require | Mode::VerifyCa, Some(verifier)) => Check::Chain(verifier),
        (Mode::VerifyFull, Some(verifier)) => Check::ChainAndName(verifier),
        (Mode::VerifyCa | Mode::VerifyFull, None) => {
            return Err(format!(
                "sslmode={} needs sslrootcert=FILE: the certificate (PEM) that the server's must chain to",
                if settings.mode == Mode::VerifyCa {
                    "verify-ca"
                } else {
                    "verify-full"
                }
            ))
        }
    };
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("cannot set up TLS: {error}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier { check, provider }))
        .with_no_client_auth();
    Ok(Some(MakeRustlsConnect::new(config)))
}

/// A verifier for the certificates in `path`.
fn roots(path: &Path, provider: &Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>, String> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|error| format!("sslrootcert {shown}: cannot read it: {error}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("sslrootcert {shown}: not PEM certificates: {error}"))?;
    if certs.is_empty() {
        return Err(format!("sslrootcert {shown}: no certificate in it"));
    }
    let mut store = RootCertStore::empty();
    for cert in certs {
        store
            .add(cert)
            .map_err(|error| format!("sslrootcert {shown}: {error}"))?;
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
        .build()
        .map_err(|error| format!("sslrootcert {shown}: {error}"))
}

/// Checks the server as [`Check`] says; the handshake's signatures are
/// always checked, so that the session's keys belong to the certificate.
#[derive(Debug)]
struct Verifier {
    check: Check,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match &self.check {
            Check::Nothing => Ok(ServerCertVerified::assertion()),
            Check::ChainAndName(roots) => {
                roots.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            Check::Chain(roots) => {
                match roots.verify_server_cert(
                    end_entity,
                    intermediates,
                    server_name,
                    ocsp_response,
                    now,
                ) {
                    // The chain was checked first: only the name is wrong.
                    Err(Error::InvalidCertificate(
                        CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. },
                    )) => Ok(ServerCertVerified::assertion()),
                    other => other,
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
