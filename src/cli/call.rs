//! `versile call`: resolve a `vop://` VRI (`docs/protocol/vop-service.md` §4.4) and
//! optionally call a method on the result; print the result as one line of
//! JSON ([`super::json`]).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use versile::client::{call_query, Client, ClientConfig, ClientError, TransportError};
use versile::tls::{TlsClientConfig, TlsClientTransport};
use versile::vri::{Query, Vri};
use versile::vts::keys::DEFAULT_MIN_PEER_BITS;
use versile::vts::{KeyPolicy, VtsError};
use versile::{CallError, LinkShutdown, RsaKeyPair, Value, VtsClientTransport};

use super::json::{parse_arg, to_json, to_json_line};
use super::{fail, parse_secs, runtime, EXIT_FAILURE, EXIT_USAGE};

/// Resolve a VRI and call a method; print the result as one line of JSON.
///
/// `vop://HOST[:PORT]/a/b/` resolves the path (a, b) with the gateway's
/// urlget; METHOD, if given, is then called on the resolved object with
/// the ARGs. Without a trailing slash, the last part of the VRI is itself
/// the method, and every word after the VRI is one of its ARGs:
/// `vop://HOST/echo '"x"'` calls echo("x") on the gateway, and
/// `vop://HOST/a/b/m?x&int:5&k=v 7` calls m("x", 5, 7, {k: "v"}) on a/b/
/// (VRI arguments first, then ARGs, keyword arguments last).
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
VRI form: vop://HOST[:PORT]/PATH/ then METHOD [ARG]..., or vop://HOST[:PORT]/PATH/METHOD[?ARGS] [ARG]...\n\n\
Examples:\n  versile call --pin SHA256:<hex> vop://127.0.0.1:4433/math/adder/ add 5\n  \
versile call --insecure vop://127.0.0.1:4433/echo '\"x\"'"
)]
pub struct CallArgs {
    /// Transports, server key pinning and our key.
    #[command(flatten)]
    client: ClientArgs,
    /// Overall time limit in seconds (connect, resolve, call).
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    timeout: Duration,
    /// The VRI, e.g. vop://127.0.0.1:4433/math/adder/ (an object) or
    /// vop://127.0.0.1:4433/echo (a method of the gateway).
    #[arg(value_name = "VRI", value_parser = parse_vri)]
    vri: Vri,
    /// After a VRI that ends in '/': the METHOD to call on the resolved
    /// object, then its ARGs. After a VRI that names a method: its ARGs.
    /// Each ARG is JSON, or a plain string.
    #[arg(value_name = "METHOD|ARG", allow_hyphen_values = true)]
    words: Vec<String>,
}

/// What to call once the VRI's path has resolved.
enum Target<'a> {
    /// The VRI ends in '/' and no METHOD follows: print the resolved value.
    Resource,
    /// The VRI ends in '/': call METHOD on the resolved object.
    Method(&'a str),
    /// The VRI names a method (its query): call it with ARGs added.
    Query(&'a Query),
}

impl CallArgs {
    /// The call target and the words that are its arguments.
    fn target(&self) -> (Target<'_>, &[String]) {
        match (&self.vri.query, self.words.split_first()) {
            (Some(query), _) => (Target::Query(query), &self.words),
            (None, Some((method, args))) => (Target::Method(method), args),
            (None, None) => (Target::Resource, &[]),
        }
    }

    /// The resolved path as a VRI path (`/a/b/`), for messages.
    fn path(&self) -> String {
        let mut path = String::from("/");
        for part in &self.vri.path {
            path.push_str(part);
            path.push('/');
        }
        path
    }
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
    s.parse::<Vri>().map_err(|e| {
        format!("{e}; expected vop://HOST[:PORT]/PATH/ or vop://HOST[:PORT]/PATH/METHOD[?ARGS]")
    })
}

pub fn run(args: CallArgs) -> ExitCode {
    let (_, words) = args.target();
    let mut call_args = Vec::with_capacity(words.len());
    for (i, a) in words.iter().enumerate() {
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
        let (target, _) = args.target();
        // A VRI that names a method is resolved up to its object here, so
        // that the command line's ARGs can join the VRI's own arguments.
        let mut path_only = args.vri.clone();
        path_only.query = None;
        let resolved = client
            .resolve(&path_only)
            .await
            .map_err(|e| describe_resolve(e, &args))?;
        let link = resolved.link;
        let method = match target {
            Target::Resource => None,
            Target::Method(m) => Some(m),
            Target::Query(q) => Some(q.name.as_str()),
        };
        let result = match method {
            None => Ok(resolved.value),
            Some(method) => match resolved.value.as_remote() {
                Some(object) => {
                    let count = match target {
                        // The VRI's arguments and keyword dict count too.
                        Target::Query(q) => {
                            q.args.len() + call_args.len() + usize::from(!q.kwargs.is_empty())
                        }
                        _ => call_args.len(),
                    };
                    let outcome = match target {
                        Target::Query(q) => call_query(object, q, call_args).await,
                        _ => object.call(method, call_args).await,
                    };
                    outcome.map_err(|e| {
                        format!(
                            "{} (calling {method} with {count} argument{} on {})",
                            describe_call(&e),
                            if count == 1 { "" } else { "s" },
                            args.path()
                        )
                    })
                }
                None => Err(format!(
                    "the VRI path {} resolved to {}, not an object; cannot call {method:?}",
                    args.path(),
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
    link.shutdown(LinkShutdown::Graceful);
    if tokio::time::timeout(Duration::from_secs(2), link.closed())
        .await
        .is_err()
    {
        link.shutdown(LinkShutdown::Forced);
    }
    code
}

/// [`describe_client`] with the VRI's path named when it did not resolve.
fn describe_resolve(e: ClientError, args: &CallArgs) -> String {
    match e {
        // urlget answered CALL_ERROR: the gateway has nothing at that path.
        ClientError::PathNotResolved(CallError::Failed(_)) => format!(
            "VRI path {} did not resolve (the gateway's urlget failed: no such path?)",
            args.path()
        ),
        ClientError::PathNotResolved(c) => {
            format!(
                "VRI path {} did not resolve: {}",
                args.path(),
                describe_call(&c)
            )
        }
        other => describe_client(other, args.client.insecure()),
    }
}

pub fn describe_client(e: ClientError, insecure: bool) -> String {
    match e {
        // A server that has no transport in common closes without a word
        // (`docs/protocol/vop-service.md` §2.6): most often a PLAIN-only server.
        ClientError::Vop(v) if !insecure => {
            format!("VOP handshake failed: {v} (if the server serves only PLAIN, use --insecure)")
        }
        ClientError::NoTransport => {
            "no common transport with the server; use --insecure to also offer PLAIN \
             (unencrypted, unauthenticated)"
                .to_owned()
        }
        ClientError::Transport(t @ TransportError::Vts(VtsError::Unauthorized)) => {
            format!("transport handshake failed: {t} (the server key does not match --pin?)")
        }
        ClientError::Call(c) => describe_call(&c),
        // urlget answered CALL_ERROR: the gateway has nothing at that path.
        ClientError::PathNotResolved(CallError::Failed(_)) => {
            "VRI path did not resolve (the gateway's urlget failed: no such path?)".to_owned()
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
