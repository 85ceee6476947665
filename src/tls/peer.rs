//! What a TLS handshake learned about the peer ([`TlsPeer`]), key
//! fingerprints, and the stream wrapper that turns a missing close_notify
//! into an ordinary end of stream.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::TlsError;
use crate::transport::PeerIdentity;

/// A TLS protocol version we speak (rustls has no older ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246).
    Tls12,
    /// TLS 1.3 (RFC 8446).
    Tls13,
}

impl TlsVersion {
    /// Both versions, newest first.
    pub const ALL: [TlsVersion; 2] = [TlsVersion::Tls13, TlsVersion::Tls12];

    pub(crate) fn rustls(self) -> &'static rustls::SupportedProtocolVersion {
        match self {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        }
    }

    pub(crate) fn from_rustls(v: rustls::ProtocolVersion) -> Option<Self> {
        match v {
            rustls::ProtocolVersion::TLSv1_2 => Some(TlsVersion::Tls12),
            rustls::ProtocolVersion::TLSv1_3 => Some(TlsVersion::Tls13),
            _ => None,
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        })
    }
}

/// The peer of a TLS connection, recorded in the connection's extensions
/// (`CallContext::extensions().get::<TlsPeer>()`) and passed to the
/// credential hooks — the TLS counterpart of Python's
/// `context.credentials` / `claimed_identity` (`docs/protocol/vop-service.md` §3.4, §5.4).
///
/// Certificates are recorded as presented; whether they were validated
/// depends on the verification mode of our side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPeer {
    /// The peer's certificate chain, leaf first, DER; empty if the peer
    /// sent none (a client that was not asked for one).
    pub certificates: Vec<CertificateDer<'static>>,
    /// The leaf's SubjectPublicKeyInfo, DER.
    pub public_key: Option<Vec<u8>>,
    /// `SHA256:<hex>` of [`public_key`](Self::public_key): the value to pin.
    pub key_fingerprint: Option<String>,
    /// For an RSA key, `SHA256:<hex>` over the PKCS#1 `RSAPublicKey` — the
    /// form VTS uses, so one pin can name the same key on both transports.
    pub rsa_key_fingerprint: Option<String>,
    /// The leaf's subject common name (an unverified claim unless the
    /// chain was validated).
    pub subject: Option<String>,
    /// The negotiated protocol version.
    pub version: Option<TlsVersion>,
    /// The negotiated cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: Option<String>,
    /// Server side: the SNI name the client sent, if any.
    pub server_name: Option<String>,
}

impl TlsPeer {
    pub(crate) fn from_connection(conn: &rustls::CommonState, sni: Option<&str>) -> Self {
        let certificates: Vec<CertificateDer<'static>> = conn
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default();
        let mut peer = TlsPeer {
            public_key: None,
            key_fingerprint: None,
            rsa_key_fingerprint: None,
            subject: None,
            version: conn.protocol_version().and_then(TlsVersion::from_rustls),
            cipher_suite: conn
                .negotiated_cipher_suite()
                .and_then(|s| s.suite().as_str().map(str::to_owned)),
            server_name: sni.map(str::to_owned),
            certificates,
        };
        if let Some(leaf) = peer.certificates.first() {
            // The verifier already parsed the leaf; a failure here cannot
            // happen for a finished handshake, and would only leave the key
            // fields empty.
            if let Ok(spki) = leaf_spki(leaf) {
                peer.key_fingerprint = Some(fingerprint(&spki));
                peer.rsa_key_fingerprint = rsa_key_fingerprint(&spki);
                peer.public_key = Some(spki);
            }
            peer.subject = subject_common_name(leaf);
        }
        peer
    }

    /// The transport-neutral part: the key fingerprint in the form `--pin`
    /// takes (the VTS form for an RSA key, so one pin names the key on both
    /// transports; else over the SubjectPublicKeyInfo), the chain, and the
    /// subject common name as the claimed identity.
    pub fn identity(&self) -> PeerIdentity {
        PeerIdentity {
            key_fingerprint: self
                .rsa_key_fingerprint
                .clone()
                .or_else(|| self.key_fingerprint.clone()),
            certificates: self.certificates.iter().map(|c| c.to_vec()).collect(),
            claimed_identity: self.subject.clone(),
        }
    }

    /// Whether `pin` (`SHA256:<hex>`) names this peer's key, in either the
    /// SubjectPublicKeyInfo or the VTS (PKCS#1) form.
    pub fn matches_pin(&self, pin: &str) -> bool {
        let Ok(pin) = parse_fingerprint(pin) else {
            return false;
        };
        self.key_fingerprint.as_deref() == Some(pin.as_str())
            || self.rsa_key_fingerprint.as_deref() == Some(pin.as_str())
    }
}

/// `SHA256:<lowercase hex>` of `data`.
pub fn fingerprint(data: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut s = String::with_capacity(7 + 64);
    s.push_str("SHA256:");
    for b in digest.as_ref() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// For an RSA SubjectPublicKeyInfo, the VTS fingerprint: `SHA256:<hex>`
/// over the PKCS#1 `RSAPublicKey` inside it.
pub(crate) fn rsa_key_fingerprint(spki: &[u8]) -> Option<String> {
    rsa_pkcs1(spki).map(fingerprint)
}

/// The `SHA256:<hex>` fingerprint of a certificate's public key
/// (SubjectPublicKeyInfo DER), the value a client pins.
pub fn certificate_key_fingerprint(cert: &CertificateDer<'_>) -> Result<String, TlsError> {
    Ok(fingerprint(&leaf_spki(cert)?))
}

/// Normalize a pin: `SHA256:` prefix (any case), 64 hex digits, optional
/// `:` between bytes (as `openssl -fingerprint` prints them).
pub(crate) fn parse_fingerprint(pin: &str) -> Result<String, TlsError> {
    let bad = || TlsError::BadFingerprint(pin.to_owned());
    let rest = pin
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("SHA256:"))
        .map(|_| &pin[7..])
        .ok_or_else(bad)?;
    let hex: String = rest
        .chars()
        .filter(|&c| c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok(format!("SHA256:{hex}"))
}

/// The leaf's SubjectPublicKeyInfo as webpki parses it — the key the
/// handshake signature is verified with, so the pin names exactly that key.
pub(crate) fn leaf_spki(cert: &CertificateDer<'_>) -> Result<Vec<u8>, TlsError> {
    let parsed = rustls::server::ParsedCertificate::try_from(cert)
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    Ok(parsed.subject_public_key_info().as_ref().to_vec())
}

/// One DER TLV: `(tag, content, rest)`. Only definite lengths up to 4
/// length bytes (DER).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// For an `rsaEncryption` SPKI, the PKCS#1 `RSAPublicKey` DER inside it.
fn rsa_pkcs1(spki: &[u8]) -> Option<&[u8]> {
    const RSA_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let (0x30, body, _) = tlv(spki)? else {
        return None;
    };
    let (0x30, alg, rest) = tlv(body)? else {
        return None;
    };
    let (0x06, oid, _) = tlv(alg)? else {
        return None;
    };
    let (0x03, bits, _) = tlv(rest)? else {
        return None;
    };
    // First byte of a BIT STRING: unused bits, 0 for a key.
    match bits.split_first() {
        Some((0, key)) if oid == RSA_OID => Some(key),
        _ => None,
    }
}

/// The first common name of the leaf's subject, if it has one.
fn subject_common_name(cert: &[u8]) -> Option<String> {
    const CN_OID: &[u8] = &[0x55, 0x04, 0x03];
    let (0x30, cert, _) = tlv(cert)? else {
        return None;
    };
    let (0x30, tbs, _) = tlv(cert)? else {
        return None;
    };
    let mut fields = tbs;
    // [0] version (absent in v1), serial, signature, issuer, validity, subject.
    if fields.first() == Some(&0xa0) {
        fields = tlv(fields)?.2;
    }
    for _ in 0..4 {
        fields = tlv(fields)?.2;
    }
    let (0x30, mut rdns, _) = tlv(fields)? else {
        return None;
    };
    while let Some((_, rdn, rest)) = tlv(rdns) {
        rdns = rest;
        let mut atvs = rdn;
        while let Some((_, atv, rest)) = tlv(atvs) {
            atvs = rest;
            let Some((0x06, oid, value)) = tlv(atv) else {
                continue;
            };
            if oid == CN_OID {
                let (tag, value, _) = tlv(value)?;
                // UTF8String, PrintableString, IA5String, T61String.
                if matches!(tag, 0x0c | 0x13 | 0x16 | 0x14) {
                    return Some(String::from_utf8_lossy(value).into_owned());
                }
            }
        }
    }
    None
}

/// A TLS stream whose read side reports a peer that closed the TCP
/// connection without a TLS close_notify as an ordinary end of stream.
///
/// Versile Python closes TLS without close_notify (`docs/protocol/vop-service.md` §3.6);
/// rustls reports that as `UnexpectedEof`, which the link driver would take
/// for a failure. Truncation is harmless here: VEC entities are
/// self-delimiting, so a cut never turns into a different complete message,
/// and a peer could end the TCP connection just as well.
pub(crate) struct CloseTolerant<S> {
    inner: S,
}

impl<S> CloseTolerant<S> {
    pub(crate) fn new(inner: S) -> Self {
        CloseTolerant { inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CloseTolerant<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                tracing::debug!("TLS peer closed without close_notify; treated as end of stream");
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CloseTolerant<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_normalize() {
        let hex = "AB".repeat(32);
        let want = format!("SHA256:{}", "ab".repeat(32));
        assert_eq!(
            parse_fingerprint(&format!("sha256:{hex}")).ok(),
            Some(want.clone())
        );
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(
            parse_fingerprint(&format!("SHA256:{colons}")).ok(),
            Some(want)
        );
        assert!(parse_fingerprint("SHA256:abc").is_err());
        assert!(parse_fingerprint("MD5:00").is_err());
        assert!(parse_fingerprint("").is_err());
        assert!(parse_fingerprint(&format!("SHA256:{}", "zz".repeat(32))).is_err());
    }

    #[test]
    fn tlv_rejects_truncation() {
        assert!(tlv(&[0x30, 0x05, 1, 2]).is_none());
        assert!(tlv(&[0x30, 0x82, 0x01]).is_none());
        assert_eq!(
            tlv(&[0x04, 0x01, 7, 9]),
            Some((0x04, &[7u8][..], &[9u8][..]))
        );
    }
}
