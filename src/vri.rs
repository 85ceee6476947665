//! VRIs: `vop://` URLs naming a resource behind a VOP service
//! (`docs/protocol/vop-service.md` §4.1–4.4), parsed and generated without I/O.
//!
//! Format: `vop://<host>[:<port>]/<p1>/.../[<query-name>[?<query-args>]][#fragment]`.
//!
//! Data flow: a string → [`Vri`] (`FromStr`) → the client connects to
//! [`Vri::authority`], calls `urlget(path tuple)` on the peer gateway when the
//! path is non-empty ([`Vri::urlget_arg`], §4.4 step 4), then calls the
//! query method with [`Query::positional_entities`] (and the keyword
//! arguments as a trailing frozendict, §4.4 step 5). `Display` generates the
//! canonical string back (§4.3); `parse(display(v)) == v` always holds for a
//! parsed value.
//!
//! Decisions where Python 0.8.5 is broken or the spec leaves room:
//! * Query arguments follow the *intended* semantics of §4.2 (Python 3 drops
//!   them). Names and values are split on raw `&` / first `=`, then
//!   percent-decoded, then the type prefix (`str:`, `int:`, `bool:`,
//!   case-sensitive) is applied. Empty arguments (`?a&&b`), empty keyword
//!   names, duplicate keyword names and arguments without a query name are
//!   errors. `?` with nothing after it means no arguments.
//! * IPv6 literals work (§4.1 says Python's are unusable): `[::1]` gives host
//!   `::1`; the bracket contents must be an IPv6 address. An unbracketed host
//!   may not contain `:` (Python would take `a:b` from `a:b:80` and fail to
//!   resolve it).
//! * The port is 1–65535, digits only; an empty port (`host:/`) is an error.
//! * `Display` omits the port when it is the default 4433, brackets IPv6
//!   hosts, percent-encodes path components and the query name (so `/` in a
//!   component becomes `%2F`), writes `int:N` and `bool:True`/`bool:False`,
//!   and prefixes a string value with `str:` when it is empty or starts with
//!   a known prefix.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use num_bigint::BigInt;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::vec::Entity;

/// Port used when a VRI names none (`docs/protocol/vop-service.md` §4.1).
pub const DEFAULT_PORT: u16 = 4433;

/// Why a VRI (or a relative `/path/[query]`) did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VriError {
    /// The scheme is not `vop` (compared case-insensitively).
    #[error("URL scheme not supported: {0:?}")]
    UnsupportedScheme(String),
    /// No `//authority` after the scheme (`vop:host`).
    #[error("missing '//' and domain after the scheme")]
    MissingAuthority,
    /// The host part of the authority is empty.
    #[error("no domain")]
    NoDomain,
    /// The host is not usable (bad IPv6 literal, `:` outside brackets).
    #[error("invalid domain: {0:?}")]
    InvalidHost(String),
    /// The port is not a decimal number in 1–65535.
    #[error("invalid port: {0:?}")]
    InvalidPort(String),
    /// The path is empty or does not start with `/`.
    #[error("path must start with '/'")]
    PathMustStartWithSlash,
    /// Two slashes in a row (`//`) in the path.
    #[error("empty path component")]
    EmptyPathComponent,
    /// A path component, query name or argument is not UTF-8 once decoded.
    #[error("not valid UTF-8 after percent-decoding: {0:?}")]
    InvalidUtf8(String),
    /// `?args` after a path that ends in `/` (no query name to call).
    #[error("query arguments without a query name")]
    ArgumentsWithoutQueryName,
    /// An empty argument between `&` separators.
    #[error("empty query argument")]
    EmptyArgument,
    /// `=value` with an empty name.
    #[error("empty keyword argument name")]
    EmptyKeywordName,
    /// The same keyword name twice.
    #[error("duplicate keyword argument {0:?}")]
    DuplicateKeyword(String),
    /// `int:` followed by something that is not a decimal integer.
    #[error("invalid int: argument {0:?}")]
    InvalidInt(String),
    /// `bool:` followed by something other than `True` or `False`.
    #[error("invalid bool: argument {0:?} (must be True or False)")]
    InvalidBool(String),
}

/// One query argument value (`docs/protocol/vop-service.md` §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum QueryArg {
    /// A string (no prefix, an unknown prefix, or `str:`).
    Str(String),
    /// `int:N`.
    Int(BigInt),
    /// `bool:True` / `bool:False`.
    Bool(bool),
}

impl QueryArg {
    /// The argument as an entity for the query call.
    pub fn to_entity<R>(&self) -> Entity<R> {
        match self {
            QueryArg::Str(s) => Entity::String(s.clone()),
            QueryArg::Int(n) => Entity::int(n.clone()),
            QueryArg::Bool(b) => Entity::Bool(*b),
        }
    }

    /// Decode one percent-decoded value, applying its type prefix.
    fn from_value(value: String) -> Result<QueryArg, VriError> {
        let Some((prefix, rest)) = value.split_once(':') else {
            return Ok(QueryArg::Str(value));
        };
        match prefix {
            "str" => Ok(QueryArg::Str(rest.to_owned())),
            "int" => parse_int(rest)
                .map(QueryArg::Int)
                .ok_or_else(|| VriError::InvalidInt(rest.to_owned())),
            "bool" => match rest {
                "True" => Ok(QueryArg::Bool(true)),
                "False" => Ok(QueryArg::Bool(false)),
                _ => Err(VriError::InvalidBool(rest.to_owned())),
            },
            _ => Ok(QueryArg::Str(value)),
        }
    }
}

/// Optional sign then one or more ASCII digits (nothing else, no `_`).
fn parse_int(s: &str) -> Option<BigInt> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl fmt::Display for QueryArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryArg::Int(n) => write!(f, "int:{n}"),
            QueryArg::Bool(true) => f.write_str("bool:True"),
            QueryArg::Bool(false) => f.write_str("bool:False"),
            QueryArg::Str(s) => {
                let needs_escape =
                    s.is_empty() || ["str:", "int:", "bool:"].iter().any(|p| s.starts_with(p));
                if needs_escape {
                    f.write_str("str:")?;
                }
                write!(f, "{}", utf8_percent_encode(s, QUERY_VALUE))
            }
        }
    }
}

/// The method call at the end of a VRI: name and arguments (§4.1, §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    /// The method to call on the resource (text after the last `/`).
    pub name: String,
    /// Positional arguments, in order.
    pub args: Vec<QueryArg>,
    /// Keyword arguments, in order, names unique.
    pub kwargs: Vec<(String, QueryArg)>,
}

impl Query {
    /// A query with no arguments.
    pub fn new(name: impl Into<String>) -> Self {
        Query {
            name: name.into(),
            ..Query::default()
        }
    }

    /// The positional arguments as entities (§4.4 step 5; the keyword
    /// arguments travel as one extra trailing frozendict, built by the caller).
    pub fn positional_entities<R>(&self) -> Vec<Entity<R>> {
        self.args.iter().map(QueryArg::to_entity).collect()
    }

    /// Parse the text after `?` (raw, not yet decoded).
    fn parse_args(&mut self, raw: &str) -> Result<(), VriError> {
        if raw.is_empty() {
            return Ok(());
        }
        for piece in raw.split('&') {
            if piece.is_empty() {
                return Err(VriError::EmptyArgument);
            }
            match piece.split_once('=') {
                None => self.args.push(QueryArg::from_value(decode(piece)?)?),
                Some((name, value)) => {
                    let name = decode(name)?;
                    if name.is_empty() {
                        return Err(VriError::EmptyKeywordName);
                    }
                    if self.kwargs.iter().any(|(n, _)| *n == name) {
                        return Err(VriError::DuplicateKeyword(name));
                    }
                    let value = QueryArg::from_value(decode(value)?)?;
                    self.kwargs.push((name, value));
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", utf8_percent_encode(&self.name, COMPONENT))?;
        let mut sep = '?';
        for arg in &self.args {
            write!(f, "{sep}{arg}")?;
            sep = '&';
        }
        for (name, arg) in &self.kwargs {
            write!(f, "{sep}{}={arg}", utf8_percent_encode(name, COMPONENT))?;
            sep = '&';
        }
        Ok(())
    }
}

/// A parsed `vop://` VRI (`docs/protocol/vop-service.md` §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vri {
    /// Host name or address; IPv6 literals without brackets. Case preserved.
    pub host: String,
    /// TCP port ([`DEFAULT_PORT`] when the VRI names none).
    pub port: u16,
    /// Decoded path components (between the first and the last `/`).
    pub path: Vec<String>,
    /// The method to call on the resource, if the VRI does not end in `/`.
    pub query: Option<Query>,
}

impl Vri {
    /// The host as passed to name resolution together with the port, e.g.
    /// `TcpStream::connect((vri.socket_host(), vri.port))`: IPv6 literals
    /// without brackets.
    pub fn socket_host(&self) -> &str {
        &self.host
    }

    /// `host:port` as a single string for `connect`, IPv6 hosts in brackets
    /// (`[::1]:4433`).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The single argument of the `urlget` call, a tuple of the path
    /// components as strings, or `None` when the path is empty and the
    /// gateway itself is the resource (§4.4 step 4).
    pub fn urlget_arg<R>(&self) -> Option<Entity<R>> {
        urlget_arg(&self.path)
    }
}

/// The `urlget` argument for `path` (see [`Vri::urlget_arg`]).
pub(crate) fn urlget_arg<R>(path: &[String]) -> Option<Entity<R>> {
    if path.is_empty() {
        return None;
    }
    Some(Entity::Tuple(
        path.iter().map(|c| Entity::String(c.clone())).collect(),
    ))
}

impl FromStr for Vri {
    type Err = VriError;

    fn from_str(s: &str) -> Result<Vri, VriError> {
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| VriError::UnsupportedScheme(String::new()))?;
        if !scheme.eq_ignore_ascii_case("vop") {
            return Err(VriError::UnsupportedScheme(scheme.to_owned()));
        }
        let rest = rest.strip_prefix("//").ok_or(VriError::MissingAuthority)?;
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path_and_query) = rest.split_at(authority_end);
        let (host, port) = parse_authority(authority)?;
        let (path, query) = parse_path_and_query(path_and_query)?;
        Ok(Vri {
            host,
            port,
            path,
            query,
        })
    }
}

/// Split `host[:port]` / `[v6]` / `[v6]:port` (§4.1 "domain", "port", "IPv6").
fn parse_authority(authority: &str) -> Result<(String, u16), VriError> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (literal, after) = bracketed
            .split_once(']')
            .ok_or_else(|| VriError::InvalidHost(authority.to_owned()))?;
        if literal.parse::<Ipv6Addr>().is_err() {
            return Err(VriError::InvalidHost(authority.to_owned()));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| VriError::InvalidHost(authority.to_owned()))?,
            ),
        };
        (literal, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(VriError::NoDomain);
    }
    if !authority.starts_with('[') && host.contains(':') {
        return Err(VriError::InvalidHost(host.to_owned()));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => parse_port(p).ok_or_else(|| VriError::InvalidPort(p.to_owned()))?,
    };
    Ok((host.to_owned(), port))
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse::<u16>().ok().filter(|&port| port != 0)
}

/// Parse `/p1/.../[name][?args][#fragment]` (§4.1 "path", "query name",
/// "fragment"; §4.2).
fn parse_path_and_query(s: &str) -> Result<(Vec<String>, Option<Query>), VriError> {
    let s = s.split_once('#').map_or(s, |(before, _fragment)| before);
    let (path, args) = match s.split_once('?') {
        Some((path, args)) => (path, Some(args)),
        None => (s, None),
    };
    let path = path
        .strip_prefix('/')
        .ok_or(VriError::PathMustStartWithSlash)?;
    let mut pieces: Vec<&str> = path.split('/').collect();
    let last = pieces.pop().unwrap_or("");
    let components = pieces
        .into_iter()
        .map(|c| match c {
            "" => Err(VriError::EmptyPathComponent),
            _ => decode(c),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let query = if last.is_empty() {
        if args.is_some() {
            return Err(VriError::ArgumentsWithoutQueryName);
        }
        None
    } else {
        let mut query = Query::new(decode(last)?);
        if let Some(args) = args {
            query.parse_args(args)?;
        }
        Some(query)
    };
    Ok((components, query))
}

/// Resolve a relative `/path/[query]` against an already-connected gateway
/// (`docs/protocol/vop-service.md` §4.4, `VUrl.relative`): same rules as the path part of
/// a VRI; the string must start with `/`.
pub fn resolve_relative(s: &str) -> Result<(Vec<String>, Option<Query>), VriError> {
    parse_path_and_query(s)
}

/// Percent-decode as UTF-8 (§4.1); malformed `%` sequences stay literal, as
/// in Python's `unquote`.
fn decode(s: &str) -> Result<String, VriError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| VriError::InvalidUtf8(s.to_owned()))
}

/// Path components and names: everything but unreserved characters is
/// encoded, `/` included (§4.3).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Query values: as components, but `:` stays readable (`foo:bar`).
const QUERY_VALUE: &AsciiSet = &COMPONENT.remove(b':');

/// The canonical VRI (§4.3): scheme `vop`, port omitted when 4433.
impl fmt::Display for Vri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("vop://")?;
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if self.port != DEFAULT_PORT {
            write!(f, ":{}", self.port)?;
        }
        f.write_str("/")?;
        for component in &self.path {
            write!(f, "{}/", utf8_percent_encode(component, COMPONENT))?;
        }
        if let Some(query) = &self.query {
            write!(f, "{query}")?;
        }
        Ok(())
    }
}
