//! Credentials sealed at rest: ChaCha20-Poly1305 under a key from the operator's
//! configuration, each sealed value bound to the record it belongs to (so a sealed
//! value copied onto another tenant's source does not open).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore as _;

/// The key credentials are sealed with: 32 bytes. Never shown.
#[derive(Clone)]
pub struct SecretKey(Key);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Why a key or a sealed value is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The configured key is not 32 bytes of base64.
    #[error("the secret key must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)")]
    BadKey,
    /// A sealed value that does not open under this key (another key, or altered).
    #[error("sealed credentials do not open with this key (another key, or altered)")]
    Unopenable,
}

impl SecretKey {
    /// A key from its base64 form.
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SecretError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey);
        }
        Ok(Self(*Key::from_slice(&bytes)))
    }

    /// A fresh random key, in base64 (what `mesh up` writes on first start).
    pub fn generate() -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        STANDARD.encode(bytes)
    }

    /// `plain` sealed for the record `bound_to`: base64 of nonce and ciphertext.
    pub fn seal(&self, plain: &[u8], bound_to: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plain,
            aad: bound_to,
        };
        let sealed = ChaCha20Poly1305::new(&self.0)
            .encrypt(Nonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(sealed);
        STANDARD.encode(out)
    }

    /// What `sealed` holds, if it was sealed under this key for `bound_to`.
    pub fn open(&self, sealed: &str, bound_to: &[u8]) -> Result<Vec<u8>, SecretError> {
        let bytes = STANDARD
            .decode(sealed)
            .map_err(|_| SecretError::Unopenable)?;
        if bytes.len() < 12 {
            return Err(SecretError::Unopenable);
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let payload = Payload {
            msg: ciphertext,
            aad: bound_to,
        };
        ChaCha20Poly1305::new(&self.0)
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| SecretError::Unopenable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_record() {
        let key = SecretKey::from_base64(&SecretKey::generate()).unwrap();
        let sealed = key.seal(b"ghp_secret", b"record-1");
        assert!(!sealed.contains("ghp_secret"));
        assert_eq!(key.open(&sealed, b"record-1").unwrap(), b"ghp_secret");
        assert_eq!(key.open(&sealed, b"record-2"), Err(SecretError::Unopenable));
        let other = SecretKey::from_base64(&SecretKey::generate()).unwrap();
        assert_eq!(
            other.open(&sealed, b"record-1"),
            Err(SecretError::Unopenable)
        );
        assert_ne!(key.seal(b"x", b"r"), key.seal(b"x", b"r"), "fresh nonces");
    }

    #[test]
    fn a_key_is_32_bytes_of_base64() {
        assert!(matches!(
            SecretKey::from_base64("c2hvcnQ="),
            Err(SecretError::BadKey)
        ));
        assert!(SecretKey::from_base64("not base64!").is_err());
        assert!(
            format!(
                "{:?}",
                SecretKey::from_base64(&SecretKey::generate()).unwrap()
            )
            .contains("redacted")
        );
    }
}
