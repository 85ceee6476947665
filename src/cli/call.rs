//! `versile call`: resolve a `vop://` VRI (`vop-service.md` §4.4) and
//! optionally call a method on the result; print the result as one line of
//! JSON ([`super::json`]).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use versile::client::{Client, ClientConfig, ClientError};
use versile::tls::{TlsClientConfig, TlsClientTransport};
use versile::vri::Vri;
use versile::vts::keys::DEFAULT_MIN_PEER_BITS;
use versile::vts::KeyPolicy;
use versile::{CallError, RsaKeyPair, Value, VtsClientTransport};

use super::json::{parse_arg, to_json, to_json_line};
use super::{fail, parse_secs, runtime, EXIT_FAILURE, EXIT_USAGE};

/// Resolve a VRI and call a method; print the result as one line of JSON.
///
/// `vop://HOST[:PORT]/a/b/` resolves the path (a, b) with the gateway's
/// urlget; without a trailing slash, the last part is a method called on
/// the resolved object (`vop://HOST/a/b/m?x&int:5&k=v` calls m("x", 5,
/// {k: "v"})) and its result is printed. METHOD, if given, is then called
/// on the resolved object with the ARGs.
///
/// Connects over VTS (Versile Python's default); without --pin any server
/// key is accepted, which does not protect against a man in the middle.
#[derive(Debug, Args)]
#[command(
    after_help = "ARG syntax: each ARG is JSON if it parses, otherwise a plain string:\n  \
    5   -1.5   123456789012345678901234567890   \"text\"   hello   [1,2]   null   true\n  \
    {\"bytes\":\"<base64>\"}   {\"exception\":[..]}   {\"tagged\":v,\"tags\":[..]}\n\
Results use the same forms; remote objects print as {\"object\":ID}.\n\n\
Exit status: 0 success, 1 remote exception / call error / resolution or link failure, 2 usage error.\n\n\
Example:\n  versile call --pin SHA256:<hex> vop://127.0.0.1:4433/math/adder/ add 5"
)]
pub struct CallArgs {
    /// Transports, server key pinning and our key.
    #[command(flatten)]
    client: ClientArgs,
    /// Overall time limit in seconds (connect, resolve, call).
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    timeout: Duration,
    /// The VRI, e.g. vop://127.0.0.1:4433/math/adder/
    #[arg(value_name = "VRI", value_parser = parse_vri)]
    vri: Vri,
    /// Method to call on the resolved object.
    #[arg(value_name = "METHOD")]
    method: Option<String>,
    /// Arguments of METHOD (JSON, or plain strings).
    #[arg(value_name = "ARG", requires = "method", allow_hyphen_values = true)]
    args: Vec<String>,
}

/// How to connect: the options `versile call` and `versile bench VRI`
/// share.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Also offer PLAIN (unencrypted, unauthenticated), for servers that
    /// serve nothing else.
    #[arg(long)]
    insecure: bool,
    /// Accept only the server key with this fingerprint (as printed by
    /// `versile serve` and `versile keygen`); also offers TLS pinned to it.
    #[arg(long, value_name = "SHA256:HEX", value_parser = parse_pin)]
    pin: Option<String>,
    /// Our RSA private key for VTS (PEM or DER); anonymous without it.
    #[arg(long, value_name = "FILE")]
    key: Option<std::path::PathBuf>,
    /// Smallest server key accepted over VTS, in bits.
    #[arg(long, value_name = "BITS", default_value_t = DEFAULT_MIN_PEER_BITS)]
    min_peer_key_bits: usize,
}

fn parse_pin(s: &str) -> Result<String, String> {
    let hex = s
        .strip_prefix("SHA256:")
        .or_else(|| s.strip_prefix("sha256:"))
        .ok_or("expected SHA256:<64 hex digits>")?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("expected SHA256:<64 hex digits>".into());
    }
    Ok(format!("SHA256:{}", hex.to_ascii_lowercase()))
}

impl ClientArgs {
    /// Whether PLAIN is offered.
    pub fn insecure(&self) -> bool {
        self.insecure
    }
}

/// The client configuration: VTS (with pin, key, policy), PLAIN if asked.
pub fn client_config(args: &ClientArgs) -> Result<ClientConfig, String> {
    let key = match &args.key {
        Some(path) => Some(
            RsaKeyPair::from_file(path)
                .map_err(|e| format!("cannot load the key {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let mut vts = VtsClientTransport::new(key)
        .key_policy(KeyPolicy::default().with_min_bits(args.min_peer_key_bits));
    if let Some(pin) = &args.pin {
        vts = vts.pin_server_key(pin.clone());
    }
    let mut config = ClientConfig::default()
        .transport(vts)
        .allow_insecure(args.insecure);
    // TLS is offered when the server key is pinned (the same fingerprint
    // names an RSA key on both transports); `versile serve` prefers VTS.
    if let Some(pin) = &args.pin {
        let tls = TlsClientConfig::pinned_key(pin)
            .and_then(TlsClientTransport::new)
            .map_err(|e| format!("TLS: {e}"))?;
        config = config.transport(tls);
    }
    Ok(config)
}

pub fn parse_vri(s: &str) -> Result<Vri, String> {
    s.parse::<Vri>().map_err(|e| e.to_string())
}

pub fn run(args: CallArgs) -> ExitCode {
    let mut call_args = Vec::with_capacity(args.args.len());
    for (i, a) in args.args.iter().enumerate() {
        match parse_arg(a) {
            Ok(v) => call_args.push(v),
            Err(e) => return fail(EXIT_USAGE, format!("argument {}: {e}", i + 1)),
        }
    }
    let rt = match runtime(false) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(call(args, call_args))
}

async fn call(args: CallArgs, call_args: Vec<Value>) -> ExitCode {
    let config = match client_config(&args.client) {
        Ok(c) => c,
        Err(msg) => return fail(EXIT_USAGE, msg),
    };
    let client = Client::new(config);
    let work = async {
        let resolved = client
            .resolve(&args.vri)
            .await
            .map_err(|e| describe_client(e, args.client.insecure))?;
        let link = resolved.link;
        let result = match &args.method {
            None => Ok(resolved.value),
            Some(method) => match resolved.value.as_remote() {
                Some(target) => target
                    .call(method, call_args)
                    .await
                    .map_err(|e| describe_call(&e)),
                None => Err(format!(
                    "the VRI resolved to {}, not an object; cannot call {method:?}",
                    to_json_line(&resolved.value)
                )),
            },
        };
        Ok::<_, String>((link, result))
    };
    let (link, result) = match tokio::time::timeout(args.timeout, work).await {
        Err(_) => return fail(EXIT_FAILURE, format!("timed out after {:?}", args.timeout)),
        Ok(Err(msg)) => return fail(EXIT_FAILURE, msg),
        Ok(Ok(x)) => x,
    };
    let code = match &result {
        Ok(value) => {
            println!("{}", to_json_line(value));
            ExitCode::SUCCESS
        }
        Err(msg) => fail(EXIT_FAILURE, msg),
    };
    // Release any remote objects in the result before closing the link,
    // then give the graceful shutdown a moment to reach the peer.
    drop(result);
    link.shutdown(false);
    if tokio::time::timeout(Duration::from_secs(2), link.closed())
        .await
        .is_err()
    {
        link.shutdown(true);
    }
    code
}

pub fn describe_client(e: ClientError, insecure: bool) -> String {
    match e {
        // A server that has no transport in common closes without a word
        // (`vop-service.md` §2.6): most often a PLAIN-only server.
        ClientError::Vop(v) if !insecure => {
            format!("VOP handshake failed: {v} (if the server serves only PLAIN, use --insecure)")
        }
        ClientError::NoTransport => {
            "no common transport with the server; use --insecure to also offer PLAIN \
             (unencrypted, unauthenticated)"
                .to_owned()
        }
        ClientError::Transport(t) if t.contains("not authorized") => {
            format!("transport handshake failed: {t} (the server key does not match --pin?)")
        }
        ClientError::Call(c) => describe_call(&c),
        // urlget answered CALL_ERROR: the gateway has nothing at that path.
        ClientError::PathNotResolved(CallError::Failed(_)) => {
            "VRI path did not resolve (the gateway's urlget failed)".to_owned()
        }
        ClientError::PathNotResolved(c) => {
            format!("VRI path did not resolve: {}", describe_call(&c))
        }
        other => other.to_string(),
    }
}

pub fn describe_call(e: &CallError) -> String {
    match e {
        // The payload prints in the JSON form, `{"exception":[args..]}`.
        CallError::Exception(v) => format!("remote exception: {}", to_json(v)),
        CallError::Failed(_) => format!(
            "call error: {e} (the peer sends no detail: unknown method, wrong arguments \
             or a failure inside the method)"
        ),
        other => other.to_string(),
    }
}
