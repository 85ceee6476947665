//! The spec's VTS test keys (`tests/data/spec/vts-vector-NAME-key.pem`,
//! NAME = `server`, `client` or `ca`) and a VTS configuration that
//! accepts them: they are 1024-bit, below the default minimum. For a
//! 2048-bit key (ring signs TLS with nothing smaller), `generated_rsa_2048`.

use std::sync::Arc;

use versile::vts::{KeyPolicy, RsaKeyPair, VtsConfig};

use super::spec_vectors::spec_data_path;

/// Path of the spec test key `name` (`server`, `client`, `ca`).
pub fn spec_key_path(name: &str) -> String {
    spec_data_path(&format!("vts-vector-{name}-key.pem"))
}

/// The spec test key `name` (`server`, `client`, `ca`).
pub fn spec_key(name: &str) -> RsaKeyPair {
    RsaKeyPair::from_file(spec_key_path(name)).unwrap_or_else(|e| panic!("spec key {name}: {e}"))
}

/// The PEM text of the spec test key `name`.
pub fn spec_key_pem(name: &str) -> String {
    std::fs::read_to_string(spec_key_path(name)).unwrap_or_else(|e| panic!("spec key {name}: {e}"))
}

/// A VTS configuration with the legacy key policy, so that the 1024-bit
/// spec keys are allowed on both sides.
pub fn legacy_vts_config() -> Arc<VtsConfig> {
    Arc::new(VtsConfig {
        key_policy: KeyPolicy::legacy(),
        ..VtsConfig::default()
    })
}

/// A 2048-bit RSA key (ring signs TLS handshakes with nothing smaller),
/// from `openssl genrsa` (generating one in a debug build is slow).
pub fn generated_rsa_2048(name: &str) -> RsaKeyPair {
    let dir = std::env::temp_dir().join(format!("versile-test-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}.pem"));
    let st = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&path)
        .arg("2048")
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(st.success(), "openssl genrsa failed");
    let key = RsaKeyPair::from_file(&path).expect("generated key");
    let _ = std::fs::remove_dir_all(&dir);
    key
}
