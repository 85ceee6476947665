//! TLS settings: our certificate and key ([`TlsIdentity`]), the server's
//! and the client's configuration ([`TlsServerConfig`], [`TlsClientConfig`])
//! and PEM loading.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::peer::{certificate_key_fingerprint, parse_fingerprint, TlsPeer, TlsVersion};
use super::TlsError;

/// The credential check run once the TLS handshake has finished, with what
/// the peer presented (Python's `VAuth.accept_credentials`,
/// `docs/protocol/vop-service.md` §5.4). Returning `false` closes the connection before
/// the link starts.
pub type TlsAuthorizer = Arc<dyn Fn(&TlsPeer) -> bool + Send + Sync>;

/// How long a TLS handshake may take by default.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Read a file for a PEM parser, naming it in the error.
fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::File {
        path: path.to_owned(),
        source,
    })
}

/// All certificates in PEM input (`-----BEGIN CERTIFICATE-----` sections),
/// in order. Fails if there are none.
pub fn parse_certificates_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what: "certificates",
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(certs)
}

/// All certificates in a PEM file.
pub fn load_certificates_pem_file(
    path: impl AsRef<Path>,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    parse_certificates_pem(&read_file(path.as_ref())?)
}

/// A certificate chain and its private key: what a server (always) or a
/// client (optionally) presents.
#[derive(Clone)]
pub struct TlsIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    fingerprint: String,
}

impl TlsIdentity {
    /// From DER: the chain (leaf first) and the leaf's private key.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, TlsError> {
        let leaf = chain.first().ok_or(TlsError::NoCertificate)?;
        let fingerprint = certificate_key_fingerprint(leaf)?;
        // Refuse a key rustls cannot sign with now rather than at the
        // first handshake.
        rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|e| TlsError::Key(e.to_string()))?;
        Ok(TlsIdentity {
            chain,
            key: Arc::new(key),
            fingerprint,
        })
    }

    /// From PEM: a certificate chain (leaf first) and a private key
    /// (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        let chain = parse_certificates_pem(cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Pem {
            what: "private key",
            reason: e.to_string(),
        })?;
        Self::from_der(chain, key)
    }

    /// From PEM files (the key may also be in the certificate file: pass
    /// the same path twice).
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, TlsError> {
        Self::from_pem(&read_file(cert.as_ref())?, &read_file(key.as_ref())?)
    }

    /// A fresh ECDSA P-256 key and a self-signed certificate for it.
    ///
    /// `subject_names` become the subjectAltNames (DNS names, or IP
    /// addresses when they parse as such); the first is also the subject
    /// common name. See [`self_signed_with_key`](Self::self_signed_with_key)
    /// for the certificate's contents.
    pub fn self_signed(subject_names: impl Into<Vec<String>>) -> Result<Self, TlsError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        Self::sign_self(subject_names.into(), key)
    }

    /// A self-signed certificate for an existing key — e.g. the service's
    /// RSA key — given as PKCS#8 DER: RSA of 2048 to 8192 bits (ring signs
    /// with nothing smaller, `docs/protocol/vop-service.md` §3.6) or ECDSA P-256.
    ///
    /// The certificate is X.509 **v3** (webpki refuses the v1 certificates
    /// Versile Python generates, §3.2), signed with SHA-256, valid from one
    /// day ago for 3650 days, with a random 64-bit serial number, key usage
    /// digitalSignature, extended key usage serverAuth + clientAuth (so the
    /// same identity can serve as a client certificate). Python peers
    /// cannot parse EC-key certificates (§3.2): use an RSA key if that ever
    /// matters.
    pub fn self_signed_with_key(
        subject_names: impl Into<Vec<String>>,
        pkcs8_der: &[u8],
    ) -> Result<Self, TlsError> {
        let der = PrivatePkcs8KeyDer::from(pkcs8_der.to_vec());
        let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256)
            .or_else(|_| {
                rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ECDSA_P256_SHA256)
            })
            .map_err(|_| {
                TlsError::Key(
                    "expected a PKCS#8 RSA key of 2048 to 8192 bits or an ECDSA P-256 key".into(),
                )
            })?;
        Self::sign_self(subject_names.into(), key)
    }

    fn sign_self(names: Vec<String>, key: rcgen::KeyPair) -> Result<Self, TlsError> {
        let mut params = rcgen::CertificateParams::new(names.clone())?;
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(
            rcgen::DnType::CommonName,
            names.first().map(String::as_str).unwrap_or("versile"),
        );
        params.distinguished_name = dn;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(3650);
        let mut serial = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial)
            .map_err(|_| TlsError::Key("no system randomness".into()))?;
        serial[0] &= 0x7f; // a positive INTEGER
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.self_signed(&key)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Self::from_der(vec![cert.der().clone()], key_der)
    }

    /// The certificate chain, leaf first.
    pub fn certificate_chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The leaf certificate in PEM, e.g. to give to a peer as its root.
    pub fn certificate_pem(&self) -> String {
        use base64::Engine as _;
        let b64 = self
            .chain
            .first()
            .map(|c| base64::engine::general_purpose::STANDARD.encode(c.as_ref()))
            .unwrap_or_default();
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }

    /// `SHA256:<hex>` of the leaf's SubjectPublicKeyInfo: what a peer pins.
    pub fn key_fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub(crate) fn key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("certificates", &self.chain.len())
            .field("key_fingerprint", &self.fingerprint)
            .finish()
    }
}

/// Whether and how a server asks clients for a certificate
/// (`docs/protocol/vop-service.md` §3.3; Python: `VAuth(key=, root=)`).
#[derive(Clone, Debug, Default)]
pub enum ClientCertMode {
    /// Never ask (the default, as Python's default `VAuth`).
    #[default]
    None,
    /// Ask; a certificate that is sent must chain to `roots`; `required`
    /// refuses clients that send none.
    Roots {
        /// The trusted roots client certificates must chain to.
        roots: Vec<CertificateDer<'static>>,
        /// Whether a client without a certificate is refused.
        required: bool,
    },
    /// Ask; accept any well-formed certificate whose key signs the
    /// handshake (possession of the key is proven, the chain is not
    /// checked): the credential hook or the link authorizer decides by the
    /// key fingerprint. `required` refuses clients that send none.
    AnyKey {
        /// Whether a client without a certificate is refused.
        required: bool,
    },
}

/// Server-side TLS settings. Off unless a [`TlsServerTransport`] is added to
/// the `VopLayer` (Python's default service config has TLS off too).
///
/// [`TlsServerTransport`]: super::TlsServerTransport
#[derive(Clone)]
pub struct TlsServerConfig {
    pub(crate) identity: TlsIdentity,
    pub(crate) client_cert: ClientCertMode,
    pub(crate) versions: Vec<TlsVersion>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) authorizer: Option<TlsAuthorizer>,
}

impl TlsServerConfig {
    /// Serve `identity`; TLS 1.2 and 1.3, no client certificates.
    pub fn new(identity: TlsIdentity) -> Self {
        TlsServerConfig {
            identity,
            client_cert: ClientCertMode::None,
            versions: TlsVersion::ALL.to_vec(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            authorizer: None,
        }
    }

    /// Certificate chain and key from PEM files.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, TlsError> {
        Ok(Self::new(TlsIdentity::from_pem_files(cert, key)?))
    }

    /// A fresh P-256 key and self-signed certificate generated now
    /// ([`TlsIdentity::self_signed`]); clients pin
    /// [`key_fingerprint`](Self::key_fingerprint).
    pub fn self_signed(subject_names: impl Into<Vec<String>>) -> Result<Self, TlsError> {
        Ok(Self::new(TlsIdentity::self_signed(subject_names)?))
    }

    /// A self-signed certificate for the service key (PKCS#8 DER, RSA
    /// ≥ 2048 bits or P-256), generated now
    /// ([`TlsIdentity::self_signed_with_key`]).
    pub fn self_signed_with_key(
        subject_names: impl Into<Vec<String>>,
        pkcs8_der: &[u8],
    ) -> Result<Self, TlsError> {
        Ok(Self::new(TlsIdentity::self_signed_with_key(
            subject_names,
            pkcs8_der,
        )?))
    }

    /// Require a client certificate chaining to `roots`.
    pub fn require_client_cert(mut self, roots: Vec<CertificateDer<'static>>) -> Self {
        self.client_cert = ClientCertMode::Roots {
            roots,
            required: true,
        };
        self
    }

    /// Ask for a client certificate chaining to `roots`; clients without
    /// one are still accepted.
    pub fn optional_client_cert(mut self, roots: Vec<CertificateDer<'static>>) -> Self {
        self.client_cert = ClientCertMode::Roots {
            roots,
            required: false,
        };
        self
    }

    /// Require a client certificate, any issuer: the key is checked by the
    /// credential hook ([`authorizer`](Self::authorizer)) or the link
    /// authorizer through [`TlsPeer::key_fingerprint`].
    pub fn require_any_client_cert(mut self) -> Self {
        self.client_cert = ClientCertMode::AnyKey { required: true };
        self
    }

    /// Ask for a client certificate, any issuer, but accept clients
    /// without one.
    pub fn accept_any_client_cert(mut self) -> Self {
        self.client_cert = ClientCertMode::AnyKey { required: false };
        self
    }

    /// Set the client-certificate mode.
    pub fn client_cert_mode(mut self, mode: ClientCertMode) -> Self {
        self.client_cert = mode;
        self
    }

    /// Restrict the protocol versions (default: 1.3 and 1.2).
    pub fn versions(mut self, versions: &[TlsVersion]) -> Self {
        self.versions = versions.to_vec();
        self
    }

    /// Limit for the TLS handshake (default 30 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Accept or refuse clients by what they presented (§5.4).
    pub fn authorizer(mut self, f: impl Fn(&TlsPeer) -> bool + Send + Sync + 'static) -> Self {
        self.authorizer = Some(Arc::new(f));
        self
    }

    /// Our certificate and key.
    pub fn identity(&self) -> &TlsIdentity {
        &self.identity
    }

    /// `SHA256:<hex>` of our public key, for clients to pin.
    pub fn key_fingerprint(&self) -> &str {
        self.identity.key_fingerprint()
    }
}

impl fmt::Debug for TlsServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServerConfig")
            .field("identity", &self.identity)
            .field("client_cert", &self.client_cert)
            .field("versions", &self.versions)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("authorizer", &self.authorizer.is_some())
            .finish()
    }
}

/// How a client checks the server.
#[derive(Clone, Debug)]
pub enum ServerVerification {
    /// WebPKI: the chain must lead to one of `roots` and the certificate
    /// must name the server (the VRI host, or [`TlsClientConfig::server_name`]).
    Roots(Vec<CertificateDer<'static>>),
    /// The server's public key must have one of these fingerprints
    /// (`SHA256:<hex>`, normalized); the chain and names are not checked.
    PinnedKeys(Vec<String>),
    /// Accept any server certificate (the handshake signature is still
    /// checked, so the key is the one in the certificate). Tests only: it
    /// gives no protection against an active attacker.
    DangerAcceptAny,
}

/// Client-side TLS settings. TLS is offered only when a
/// [`TlsClientTransport`] is added to the `ClientConfig`.
///
/// [`TlsClientTransport`]: super::TlsClientTransport
#[derive(Clone)]
pub struct TlsClientConfig {
    pub(crate) verification: ServerVerification,
    pub(crate) identity: Option<TlsIdentity>,
    pub(crate) server_name: Option<String>,
    pub(crate) versions: Vec<TlsVersion>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) authorizer: Option<TlsAuthorizer>,
}

impl TlsClientConfig {
    fn with(verification: ServerVerification) -> Self {
        TlsClientConfig {
            verification,
            identity: None,
            server_name: None,
            versions: TlsVersion::ALL.to_vec(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            authorizer: None,
        }
    }

    /// Verify the server against `roots` (WebPKI, with the name check).
    pub fn with_roots(roots: Vec<CertificateDer<'static>>) -> Self {
        Self::with(ServerVerification::Roots(roots))
    }

    /// Verify the server against the roots in a PEM file.
    pub fn with_roots_pem_file(path: impl AsRef<Path>) -> Result<Self, TlsError> {
        Ok(Self::with_roots(load_certificates_pem_file(path)?))
    }

    /// Accept only a server whose key has this fingerprint
    /// (`SHA256:<hex>` of its SubjectPublicKeyInfo, or for RSA the VTS
    /// form over PKCS#1). No name check: VOP has no server-name convention.
    pub fn pinned_key(fingerprint: &str) -> Result<Self, TlsError> {
        Self::pinned_keys([fingerprint])
    }

    /// Accept a server whose key has any of these fingerprints.
    pub fn pinned_keys<'a>(
        fingerprints: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, TlsError> {
        let pins = fingerprints
            .into_iter()
            .map(parse_fingerprint)
            .collect::<Result<Vec<_>, _>>()?;
        if pins.is_empty() {
            return Err(TlsError::Verifier("no key pinned".into()));
        }
        Ok(Self::with(ServerVerification::PinnedKeys(pins)))
    }

    /// Accept any server certificate. For tests; the name says it.
    pub fn danger_accept_any_server_cert() -> Self {
        Self::with(ServerVerification::DangerAcceptAny)
    }

    /// Present a client certificate when the server asks for one.
    pub fn client_identity(mut self, identity: TlsIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Present the client certificate and key from PEM files.
    pub fn client_cert_pem_files(
        self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        Ok(self.client_identity(TlsIdentity::from_pem_files(cert, key)?))
    }

    /// The name sent as SNI and checked in [`ServerVerification::Roots`]
    /// mode (default: the host of the address connected to).
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Restrict the protocol versions (default: 1.3 and 1.2).
    pub fn versions(mut self, versions: &[TlsVersion]) -> Self {
        self.versions = versions.to_vec();
        self
    }

    /// Limit for the TLS handshake (default 30 s; the client's
    /// `connect_timeout` bounds the whole connection as well).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Accept or refuse the server by what it presented, after the
    /// verification mode has accepted it (§5.4).
    pub fn authorizer(mut self, f: impl Fn(&TlsPeer) -> bool + Send + Sync + 'static) -> Self {
        self.authorizer = Some(Arc::new(f));
        self
    }
}

impl fmt::Debug for TlsClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClientConfig")
            .field("verification", &self.verification)
            .field("identity", &self.identity)
            .field("server_name", &self.server_name)
            .field("versions", &self.versions)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("authorizer", &self.authorizer.is_some())
            .finish()
    }
}
