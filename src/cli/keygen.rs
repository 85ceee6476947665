//! `versile keygen`: write a new RSA private key for `versile serve --key`
//! and `versile call --key` (`docs/protocol/vts.md` §10 #5: 2048 bits by default).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use versile::vts::keys::DEFAULT_KEY_BITS;
use versile::RsaKeyPair;

use super::{fail, EXIT_FAILURE, EXIT_USAGE};

/// Generate an RSA private key and write it as PEM (mode 0600).
///
/// Prints the key's fingerprint (SHA256:<hex> of the public key), the
/// value clients pin with `versile call --pin`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Modulus size in bits (at least 1024; 2048 or more recommended).
    #[arg(long, value_name = "BITS", default_value_t = DEFAULT_KEY_BITS)]
    bits: usize,
    /// PEM flavour: pkcs8 (`PRIVATE KEY`) or pkcs1 (`RSA PRIVATE KEY`,
    /// readable by Versile Python's VX509Crypto.import_private_key).
    #[arg(long, value_enum, default_value_t = KeyFormat::Pkcs8)]
    format: KeyFormat,
    /// Overwrite OUT if it exists.
    #[arg(long)]
    force: bool,
    /// Output file.
    #[arg(value_name = "OUT.pem")]
    out: PathBuf,
}

/// PEM flavour of the written key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KeyFormat {
    Pkcs8,
    Pkcs1,
}

pub fn run(args: KeygenArgs) -> ExitCode {
    if !(1024..=16384).contains(&args.bits) {
        return fail(EXIT_USAGE, "--bits must be between 1024 and 16384");
    }
    let key = match RsaKeyPair::generate(args.bits) {
        Ok(k) => k,
        Err(e) => return fail(EXIT_FAILURE, format!("cannot generate a key: {e}")),
    };
    let pem = match args.format {
        KeyFormat::Pkcs8 => key.to_pkcs8_pem(),
        KeyFormat::Pkcs1 => key.to_pkcs1_pem(),
    };
    let pem = match pem {
        Ok(p) => p,
        Err(e) => return fail(EXIT_FAILURE, format!("cannot encode the key: {e}")),
    };
    if let Err(e) = write_private(&args.out, pem.as_bytes(), args.force) {
        return fail(
            EXIT_FAILURE,
            format!("cannot write {}: {e}", args.out.display()),
        );
    }
    println!("{}", key.fingerprint());
    ExitCode::SUCCESS
}

/// Create `path` readable by the owner only, then write `data`.
fn write_private(path: &std::path::Path, data: &[u8], force: bool) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    // An existing file keeps its mode on truncation: tighten it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(data)?;
    f.sync_all()
}
