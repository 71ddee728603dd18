//! Where composed messages go: an SMTP server (lettre, TLS as the URL
//! says), or `.eml` files in `<data dir>/mail/` when no server is set.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport as _, Tokio1Executor};

use super::compose::Composed;
use crate::domain::MailId;

/// lettre's own limit, per SMTP command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// One whole delivery (connect, TLS, AUTH, envelope, data). Must stay well
/// under the worker's lease, or another worker could take the row over
/// while this one is still sending it.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("CONSULTA_SMTP_URL: {0}")]
    SmtpUrl(String),
    #[error("CONSULTA_DATA_DIR: cannot create the mail folder {}: {source}", path.display())]
    MailDir { path: PathBuf, source: std::io::Error },
}

/// How one delivery attempt failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    /// The server refused for good (5xx): retrying cannot help.
    #[error("{0}")]
    Permanent(String),
    /// Connection refused, timeout, 4xx, TLS or I/O trouble: try again later.
    #[error("{0}")]
    Transient(String),
}

#[derive(Clone, Debug)]
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

impl Transport {
    /// SMTP when a URL is set, otherwise files under `data_dir/mail`
    /// (created now, so a permission problem shows at start).
    pub fn from_config(smtp_url: Option<&str>, data_dir: &Path) -> Result<Self, TransportError> {
        match smtp_url {
            Some(url) => {
                let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| TransportError::SmtpUrl(format!("not a usable SMTP URL ({e})")))?;
                Ok(Transport::Smtp(builder.timeout(Some(COMMAND_TIMEOUT)).build()))
            }
            None => {
                let dir = data_dir.join("mail");
                std::fs::create_dir_all(&dir)
                    .map_err(|source| TransportError::MailDir { path: dir.clone(), source })?;
                Ok(Transport::Files(dir))
            }
        }
    }

    pub async fn send(&self, id: MailId, message: &Composed) -> Result<(), SendError> {
        match self {
            Transport::Smtp(smtp) => {
                match tokio::time::timeout(SEND_TIMEOUT, smtp.send_raw(&message.envelope, &message.bytes)).await {
                    Err(_) => Err(SendError::Transient(format!("no answer within {} s", SEND_TIMEOUT.as_secs()))),
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
                    Ok(Err(e)) => Err(SendError::Transient(e.to_string())),
                }
            }
            Transport::Files(dir) => write_file(dir, id, &message.bytes).await,
        }
    }
}

/// `<id>.eml`, written under a temporary name and renamed, so a reader
/// never sees half a message and a retry replaces instead of duplicating.
async fn write_file(dir: &Path, id: MailId, bytes: &[u8]) -> Result<(), SendError> {
    let io = |e: std::io::Error| SendError::Transient(format!("cannot write to {}: {e}", dir.display()));
    tokio::fs::create_dir_all(dir).await.map_err(io)?;
    let path = dir.join(format!("{id}.eml"));
    let partial = dir.join(format!(".{id}.eml.partial"));
    tokio::fs::write(&partial, bytes).await.map_err(io)?;
    tokio::fs::rename(&partial, &path).await.map_err(io)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_bad_smtp_url_names_the_variable_without_the_password() {
        let err = Transport::from_config(Some("smtp://user:s3cret@"), Path::new("/nonexistent")).err().unwrap();
        let text = err.to_string();
        assert!(text.starts_with("CONSULTA_SMTP_URL"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[tokio::test]
    async fn files_land_whole_under_the_mail_id() {
        let dir = tempfile::tempdir().unwrap();
        let transport = Transport::from_config(None, dir.path()).unwrap();
        let message = lettre::Message::builder()
            .from("a@example.org".parse().unwrap())
            .to("b@example.org".parse().unwrap())
            .subject("hi")
            .body("hello".to_owned())
            .unwrap();
        let composed =
            Composed { envelope: message.envelope().clone(), bytes: message.formatted(), message_id: "<x@y>".into() };
        let id = MailId::new();
        transport.send(id, &composed).await.unwrap();
        transport.send(id, &composed).await.unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path().join("mail"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![format!("{id}.eml")]);
    }
}
