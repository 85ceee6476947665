//! Certificate verifiers for the modes WebPKI does not cover: a pinned
//! server key, any server (tests), and any client certificate (checked by
//! the credential hook).
//!
//! All of them still verify the handshake signature with the provider's
//! algorithms, so the peer has proven possession of the key in its
//! certificate; they differ only in which certificates they accept.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, OtherError};

use super::peer::{fingerprint, leaf_spki, rsa_key_fingerprint};

/// The leaf must parse (webpki refuses X.509 v1 and broken DER).
fn parse_leaf(cert: &CertificateDer<'_>) -> Result<Vec<u8>, Error> {
    leaf_spki(cert).map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))
}

/// Why a pinned server was refused; shown in the client's error.
#[derive(Debug)]
struct PinMismatch(String);

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "server key {} does not match the pinned key fingerprint",
            self.0
        )
    }
}

impl std::error::Error for PinMismatch {}

/// Client mode "pinned key": the server's SubjectPublicKeyInfo (or, for
/// RSA, its PKCS#1 key as VTS names it) must hash to one of the pins. No
/// chain, validity-period or name check: the pin is the whole trust
/// decision, as in Python's `accept_credentials` recipe (`docs/protocol/vop-service.md`
/// §5.4), and VOP has no server-name convention.
#[derive(Debug)]
pub(crate) struct PinnedServerKey {
    pub(crate) pins: Vec<String>,
    pub(crate) algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedServerKey {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let spki = parse_leaf(end_entity)?;
        let spki_fp = fingerprint(&spki);
        let rsa_fp = rsa_key_fingerprint(&spki);
        let ok = self
            .pins
            .iter()
            .any(|pin| *pin == spki_fp || rsa_fp.as_deref() == Some(pin.as_str()));
        if ok {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(PinMismatch(spki_fp))),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Client mode `danger_accept_any_server_cert`: any well-formed server
/// certificate whose key signs the handshake.
#[derive(Debug)]
pub(crate) struct AnyServerCert {
    pub(crate) algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        parse_leaf(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Server mode "any client certificate": ask for one, accept any
/// well-formed certificate whose key signs the handshake; the credential
/// hook or link authorizer decides on the key (`docs/protocol/vop-service.md` §5.4).
#[derive(Debug)]
pub(crate) struct AnyClientCert {
    pub(crate) required: bool,
    pub(crate) algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.required
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        parse_leaf(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algs.supported_schemes()
    }
}
