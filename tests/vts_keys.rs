//! RSA key loading and the peer key policy (`docs/protocol/vts.md` §3.3, §10 #5):
//! PKCS#1 and PKCS#8 PEM, DER, files; writing PEM; the minimum size.

use num_bigint::BigInt;
use versile::vts::keys::{DEFAULT_KEY_BITS, DEFAULT_MIN_PEER_BITS};
use versile::vts::{KeyPolicy, PublicKey, VtsError};
use versile::RsaKeyPair;

mod support;
use support::keys::spec_key_pem;

#[test]
fn pkcs1_pem_pkcs8_pem_and_der_load_the_same_key() {
    let pem1 = spec_key_pem("server");
    assert!(pem1.contains("BEGIN RSA PRIVATE KEY"));
    let k1 = RsaKeyPair::from_pem(&pem1).unwrap();
    let fp = k1.fingerprint();
    assert!(fp.starts_with("SHA256:") && fp.len() == 7 + 64, "{fp}");

    let pem8 = k1.to_pkcs8_pem().unwrap();
    assert!(pem8.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert_eq!(RsaKeyPair::from_pem(&pem8).unwrap().fingerprint(), fp);

    let again1 = k1.to_pkcs1_pem().unwrap();
    assert!(again1.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    assert_eq!(RsaKeyPair::from_pem(&again1).unwrap().fingerprint(), fp);

    let der1 = k1.to_pkcs1_der().unwrap();
    assert_eq!(RsaKeyPair::from_der(&der1).unwrap().fingerprint(), fp);
    // PKCS#8 DER: the PEM body.
    let b64: String = pem8.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine;
    let der8 = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(RsaKeyPair::from_der(&der8).unwrap().fingerprint(), fp);

    // Files: PEM (both) and DER.
    let dir = std::env::temp_dir().join(format!("versile-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, data) in [
        ("k1.pem", pem1.as_bytes().to_vec()),
        ("k8.pem", pem8.as_bytes().to_vec()),
        ("k1.der", der1.clone()),
        ("k8.der", der8.clone()),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        assert_eq!(
            RsaKeyPair::from_file(&p).unwrap().fingerprint(),
            fp,
            "{name}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_keys_are_errors() {
    assert!(RsaKeyPair::from_pem("nothing").is_err());
    assert!(
        RsaKeyPair::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .is_err()
    );
    assert!(RsaKeyPair::from_der(b"\x30\x03\x02\x01\x00").is_err());
    assert!(RsaKeyPair::from_file("/nonexistent/key.pem").is_err());
}

#[test]
fn default_sizes() {
    assert_eq!(DEFAULT_KEY_BITS, 2048);
    assert_eq!(DEFAULT_MIN_PEER_BITS, 1024);
    assert_eq!(KeyPolicy::default().min_bits, 1024);
    assert_eq!(KeyPolicy::legacy().min_bits, 512);
    assert_eq!(KeyPolicy::default().with_min_bits(768).min_bits, 768);
}

/// A 512-bit modulus (odd, top bit set), e = 65537.
fn n512() -> BigInt {
    (BigInt::from(1) << 511) + BigInt::from(0x1234_5679u32)
}

#[test]
fn weak_peer_key_is_refused_naming_the_option() {
    let e = BigInt::from(65537);
    let err = PublicKey::from_wire(&n512(), &e, &KeyPolicy::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, VtsError::KeyRefused(_)));
    assert!(
        msg.contains("512 bits")
            && msg.contains("minimum of 1024")
            && msg.contains("KeyPolicy::min_bits")
            && msg.contains("--min-peer-key-bits"),
        "{msg}"
    );
    let k = PublicKey::from_wire(&n512(), &e, &KeyPolicy::legacy()).unwrap();
    assert_eq!(k.bits(), 512);
    // 1024-bit keys pass the default policy.
    let k1024 = RsaKeyPair::from_pem(&spec_key_pem("server")).unwrap();
    let pk = k1024.public();
    PublicKey::from_wire(&pk.n(), &pk.e(), &KeyPolicy::default()).unwrap();
}
