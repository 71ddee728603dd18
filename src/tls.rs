//! TLS: the certificate files, a self-signed pair on first start when
//! none are given, and the rustls server settings.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "CONSULTA_TLS_CERT and CONSULTA_TLS_KEY: only {present} exists; give both files or neither (to generate a self-signed pair)"
    )]
    HalfPair { present: &'static str },
    #[error("CONSULTA_TLS_CERT ({path}): {message}")]
    Cert { path: String, message: String },
    #[error("CONSULTA_TLS_KEY ({path}): {message}")]
    Key { path: String, message: String },
    #[error("could not generate a self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS settings were refused: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Where the certificate came from, for the start-up summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsSource {
    Files,
    Generated,
}

/// Installs ring as rustls's process-wide provider; callable any number of times.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Loads the pair, generating a self-signed one for localhost when both
/// files are missing.
pub fn load_or_generate(files: &TlsFiles) -> Result<(Arc<ServerConfig>, TlsSource), TlsError> {
    let source = match (files.cert.exists(), files.key.exists()) {
        (true, true) => TlsSource::Files,
        (false, false) => {
            generate(&files.cert, &files.key)?;
            TlsSource::Generated
        }
        (true, false) => return Err(TlsError::HalfPair { present: "the certificate" }),
        (false, true) => return Err(TlsError::HalfPair { present: "the key" }),
    };
    let cert_path = files.cert.display().to_string();
    let key_path = files.key.display().to_string();
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert { path: cert_path.clone(), message: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::Cert { path: cert_path, message: "no certificate in the file".into() });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| TlsError::Key { path: key_path, message: e.to_string() })?;
    Ok((Arc::new(server_config(certs, key)?), source))
}

fn server_config(certs: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn generate(cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    let pair = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    write_file(cert_path, pair.cert.pem().as_bytes(), 0o644)?;
    write_file(key_path, pair.signing_key.serialize_pem().as_bytes(), 0o600)?;
    Ok(())
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let fail = |e: std::io::Error| TlsError::Generate(format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path).and_then(|mut f| f.write_all(contents)).map_err(fail)
}
