//! The three byte transports a VOP handshake can select and a small set type
//! for the transports one side enables or offers (`docs/protocol/vop-service.md` §2.1–2.3).

use std::fmt;
use std::str::FromStr;

use super::error::VopError;

/// A byte transport negotiated by the VOP handshake (`docs/protocol/vop-service.md` §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// Versile Transport Security (`docs/protocol/vts.md`).
    Vts,
    /// TLS (`docs/protocol/vop-service.md` §3).
    Tls,
    /// No transport: VEC runs directly on the TCP stream.
    Plain,
}

impl Transport {
    /// Every transport, in the fixed order VTS, TLS, PLAIN. This is both the
    /// order of tokens in a client hello (§2.2) and the server's preference
    /// order (§2.3).
    pub const ALL: [Transport; 3] = [Transport::Vts, Transport::Tls, Transport::Plain];

    /// The upper-case wire token (`VTS`, `TLS`, `PLAIN`).
    pub fn token(self) -> &'static str {
        match self {
            Transport::Vts => "VTS",
            Transport::Tls => "TLS",
            Transport::Plain => "PLAIN",
        }
    }

    /// The transport whose wire token is exactly `token` (case-sensitive, as
    /// on the wire, `docs/protocol/vop-service.md` §2.4 step 2).
    pub fn from_token(token: &[u8]) -> Option<Transport> {
        Transport::ALL
            .into_iter()
            .find(|t| t.token().as_bytes() == token)
    }

    fn bit(self) -> u8 {
        match self {
            Transport::Vts => 1,
            Transport::Tls => 2,
            Transport::Plain => 4,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

/// A set of transports (enabled on a server, or offered by a client).
///
/// Iteration is always in the fixed order VTS, TLS, PLAIN.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TransportSet(u8);

impl TransportSet {
    /// The empty set.
    pub const fn empty() -> Self {
        TransportSet(0)
    }

    /// All three transports.
    pub const fn all() -> Self {
        TransportSet(7)
    }

    /// Whether `t` is in the set.
    pub fn contains(self, t: Transport) -> bool {
        self.0 & t.bit() != 0
    }

    /// Add `t`; returns whether it was newly added.
    pub fn insert(&mut self, t: Transport) -> bool {
        let new = !self.contains(t);
        self.0 |= t.bit();
        new
    }

    /// Remove `t`; returns whether it was present.
    pub fn remove(&mut self, t: Transport) -> bool {
        let had = self.contains(t);
        self.0 &= !t.bit();
        had
    }

    /// The set with `t` added (builder style).
    pub fn with(mut self, t: Transport) -> Self {
        self.insert(t);
        self
    }

    /// Whether the set has no transport.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of transports in the set.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Transports in both sets.
    pub fn intersection(self, other: TransportSet) -> TransportSet {
        TransportSet(self.0 & other.0)
    }

    /// The members in the fixed order VTS, TLS, PLAIN.
    pub fn iter(self) -> impl Iterator<Item = Transport> {
        Transport::ALL
            .into_iter()
            .filter(move |t| self.contains(*t))
    }

    /// The server's choice (`docs/protocol/vop-service.md` §2.3): the first transport in the
    /// fixed preference order VTS > TLS > PLAIN that is both in `self` (the
    /// enabled set) and in `offered`. Client token order is irrelevant.
    pub fn preferred(self, offered: TransportSet) -> Option<Transport> {
        self.intersection(offered).iter().next()
    }
}

impl From<Transport> for TransportSet {
    fn from(t: Transport) -> Self {
        TransportSet(t.bit())
    }
}

impl FromIterator<Transport> for TransportSet {
    fn from_iter<I: IntoIterator<Item = Transport>>(iter: I) -> Self {
        let mut set = TransportSet::empty();
        for t in iter {
            set.insert(t);
        }
        set
    }
}

impl fmt::Debug for TransportSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Lower-case, comma-separated tokens in the fixed order, e.g. `vts,tls,plain`;
/// the empty set prints as the empty string. Parses back with [`FromStr`].
impl fmt::Display for TransportSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(&t.token().to_ascii_lowercase())?;
        }
        Ok(())
    }
}

/// Parses a human-written list (for a CLI or config file), not a wire line:
/// tokens are case-insensitive, separated by `,` or `+` (the spec's matrix
/// writes `VTS+TLS`), surrounding whitespace is ignored. The empty string is
/// the empty set (callers that need a transport reject it later with
/// [`VopError::EmptyTransportSet`]). Unknown or repeated tokens are errors.
impl FromStr for TransportSet {
    type Err = VopError;

    fn from_str(s: &str) -> Result<Self, VopError> {
        let mut set = TransportSet::empty();
        if s.trim().is_empty() {
            return Ok(set);
        }
        for piece in s.split([',', '+']) {
            let piece = piece.trim();
            let t = Transport::from_token(piece.to_ascii_uppercase().as_bytes())
                .ok_or_else(|| VopError::UnknownToken(piece.escape_debug().to_string()))?;
            if !set.insert(t) {
                return Err(VopError::DuplicateToken(t));
            }
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iteration_order_is_fixed() {
        let set: TransportSet = [Transport::Plain, Transport::Vts, Transport::Tls]
            .into_iter()
            .collect();
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![Transport::Vts, Transport::Tls, Transport::Plain]
        );
    }

    #[test]
    fn parse_and_display_round_trip() {
        for s in ["", "vts", "tls", "plain", "vts,plain", "vts,tls,plain"] {
            let set: TransportSet = s.parse().expect("valid");
            assert_eq!(set.to_string(), s);
        }
        let set: TransportSet = " PLAIN + Vts ".parse().expect("valid");
        assert_eq!(set.to_string(), "vts,plain");
        assert!(matches!(
            "vts,foo".parse::<TransportSet>(),
            Err(VopError::UnknownToken(_))
        ));
        assert!(matches!(
            "vts,VTS".parse::<TransportSet>(),
            Err(VopError::DuplicateToken(Transport::Vts))
        ));
        assert!(matches!(
            "vts,".parse::<TransportSet>(),
            Err(VopError::UnknownToken(_))
        ));
    }

    #[test]
    fn set_operations() {
        let mut set = TransportSet::empty();
        assert!(set.is_empty());
        assert!(set.insert(Transport::Tls));
        assert!(!set.insert(Transport::Tls));
        assert_eq!(set.len(), 1);
        assert!(set.contains(Transport::Tls));
        assert!(!set.contains(Transport::Vts));
        assert!(set.remove(Transport::Tls));
        assert!(set.is_empty());
        assert_eq!(TransportSet::all().len(), 3);
        assert_eq!(format!("{:?}", TransportSet::all()), "{Vts, Tls, Plain}");
    }
}
