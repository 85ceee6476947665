//! The spec's VTS test keys (`tests/data/spec/vts-vector-NAME-key.pem`,
//! NAME = `server`, `client` or `ca`) and a VTS configuration that
//! accepts them: they are 1024-bit, below the default minimum.

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
