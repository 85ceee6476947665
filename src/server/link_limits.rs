//! [`LinkLimits`]: the per-link and process-wide resource limits of the
//! links a [`StackConfig`](super::StackConfig) serves (its `link` field,
//! the `[stack.link]` table of `versile serve --config FILE`, issue #7).
//!
//! Each knob has one name: the TOML key is the `versile serve` flag
//! without `--` (`max_exports` ↔ `--max-exports`); the defaults are the
//! code defaults of [`LinkOptions`] (the same constants). Data flow:
//! [`StackConfig::build`](super::StackConfig::build) turns the limits into
//! a [`StackLinkSettings`] once, creating the process-wide
//! [`MemoryBudget`] and [`CallBudget`] there, and leaves a clone of it in
//! every connection's extensions; [`GatewayService`](super::GatewayService)
//! applies it to the link's options, so all connections of one built stack
//! share the two budgets.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::runtime::memory::{
    DEFAULT_LINK_BUDGET, DEFAULT_LINK_RESERVE, DEFAULT_MAX_UNSENT_OUTPUT, DEFAULT_PROCESS_BUDGET,
};
use crate::runtime::{CallBudget, CallLimits, LinkOptions, MemoryBudget};
use crate::vec::{DEFAULT_MAX_DEPTH, DEFAULT_MAX_ENTITY_SIZE};
use crate::vol::{
    TableLimits, DEFAULT_HANDSHAKE_MAX_DECODED_BYTES, DEFAULT_HANDSHAKE_MAX_ENTITY_SIZE,
    DEFAULT_LINK_MAX_DECODED_BYTES,
};

/// Resource limits of every link of a built stack. Sizes are bytes (in
/// TOML and flags also a string with a binary suffix: `"64MiB"`, `"4KiB"`,
/// `"1GiB"`). `0` is refused except for
/// [`max_process_calls`](Self::max_process_calls), where it turns the
/// shared cap off. The reasons for each default are on the field the knob
/// sets (linked).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkLimits {
    /// Memory one link may hold (`--max-link-memory`;
    /// [`MemoryLimits::link_budget`](crate::runtime::MemoryLimits::link_budget),
    /// default 192 MiB). Over it the link stops reading, or is closed if
    /// nothing it holds can drain.
    #[serde(deserialize_with = "de_size")]
    pub max_link_memory: usize,
    /// Memory each link may hold without charging the process-wide budget
    /// (`--link-memory-reserve`;
    /// [`MemoryLimits::link_reserve`](crate::runtime::MemoryLimits::link_reserve),
    /// default 256 KiB).
    #[serde(deserialize_with = "de_size")]
    pub link_memory_reserve: usize,
    /// Memory all links of the stack may hold together beyond their
    /// reserves (`--max-process-memory`;
    /// [`MemoryLimits::process`](crate::runtime::MemoryLimits::process),
    /// default 512 MiB). One budget per built stack.
    #[serde(deserialize_with = "de_size")]
    pub max_process_memory: usize,
    /// Unsent output after which a link stops reading until the peer reads
    /// (`--max-unsent-output`;
    /// [`MemoryLimits::max_unsent_output`](crate::runtime::MemoryLimits::max_unsent_output),
    /// default 8 MiB).
    #[serde(deserialize_with = "de_size")]
    pub max_unsent_output: usize,
    /// Wire size of one entity once the handshake is complete
    /// (`--max-entity-size`;
    /// [`LinkConfig::max_entity_size`](crate::vol::LinkConfig::max_entity_size),
    /// default 105,906,176, Python's limit, `docs/protocol/vec.md` §8.4).
    #[serde(deserialize_with = "de_size")]
    pub max_entity_size: usize,
    /// In-memory cost of one decoded entity once the handshake is complete
    /// (`--max-decoded-entity`;
    /// [`LinkConfig::max_decoded_bytes`](crate::vol::LinkConfig::max_decoded_bytes),
    /// default 64 MiB). Over it the link is closed.
    #[serde(deserialize_with = "de_size")]
    pub max_decoded_entity: usize,
    /// Wire size of one entity before the handshake is complete
    /// (`--max-handshake-entity-size`;
    /// [`LinkConfig::handshake_max_entity_size`](crate::vol::LinkConfig::handshake_max_entity_size),
    /// default 4 KiB).
    #[serde(deserialize_with = "de_size")]
    pub max_handshake_entity_size: usize,
    /// In-memory cost of one entity before the handshake is complete
    /// (`--max-handshake-decoded-entity`;
    /// [`LinkConfig::handshake_max_decoded_bytes`](crate::vol::LinkConfig::handshake_max_decoded_bytes),
    /// default 64 KiB).
    #[serde(deserialize_with = "de_size")]
    pub max_handshake_decoded_entity: usize,
    /// Nesting depth of one entity (`--max-entity-depth`;
    /// [`LinkConfig::max_depth`](crate::vol::LinkConfig::max_depth),
    /// default 256).
    #[serde(deserialize_with = "de_nonzero")]
    pub max_entity_depth: usize,
    /// Objects a link exports at once (`--max-exports`;
    /// [`TableLimits::max_exports`], default 1024); a result that would
    /// export more becomes CALL_ERROR. At least 2.
    #[serde(deserialize_with = "de_nonzero")]
    pub max_exports: usize,
    /// Peer objects a link imports at once (`--max-imports`;
    /// [`TableLimits::max_imports`], default 1024); a peer sending more is
    /// disconnected. At least 2.
    #[serde(deserialize_with = "de_nonzero")]
    pub max_imports: usize,
    /// Incoming calls of one link running at once (`--max-calls-in-flight`;
    /// [`CallLimits::max_in_flight`], default 256); more wait in the queue.
    #[serde(deserialize_with = "de_nonzero")]
    pub max_calls_in_flight: usize,
    /// Decoded calls of one link waiting to start (`--max-queued-calls`;
    /// [`CallLimits::max_queued`], default 1024); a full queue stops
    /// reading.
    #[serde(deserialize_with = "de_nonzero")]
    pub max_queued_calls: usize,
    /// Incoming calls running at once across all links of the stack
    /// (`--max-process-calls`; [`CallLimits::budget`], default
    /// [`CallBudget::DEFAULT_SIZE`], 8192; `None`/`0`: no shared cap).
    /// One budget per built stack.
    #[serde(deserialize_with = "de_calls")]
    pub max_process_calls: Option<usize>,
}

impl Default for LinkLimits {
    fn default() -> Self {
        let calls = CallLimits::default();
        let tables = TableLimits::default();
        LinkLimits {
            max_link_memory: DEFAULT_LINK_BUDGET,
            link_memory_reserve: DEFAULT_LINK_RESERVE,
            max_process_memory: DEFAULT_PROCESS_BUDGET,
            max_unsent_output: DEFAULT_MAX_UNSENT_OUTPUT,
            max_entity_size: DEFAULT_MAX_ENTITY_SIZE,
            max_decoded_entity: DEFAULT_LINK_MAX_DECODED_BYTES,
            max_handshake_entity_size: DEFAULT_HANDSHAKE_MAX_ENTITY_SIZE,
            max_handshake_decoded_entity: DEFAULT_HANDSHAKE_MAX_DECODED_BYTES,
            max_entity_depth: DEFAULT_MAX_DEPTH,
            max_exports: tables.max_exports,
            max_imports: tables.max_imports,
            max_calls_in_flight: calls.max_in_flight,
            max_queued_calls: calls.max_queued,
            max_process_calls: Some(CallBudget::DEFAULT_SIZE),
        }
    }
}

impl LinkLimits {
    /// The name (TOML key) of the first limit that is `0` but must not be.
    pub fn first_zero(&self) -> Option<&'static str> {
        [
            ("max_link_memory", self.max_link_memory),
            ("link_memory_reserve", self.link_memory_reserve),
            ("max_process_memory", self.max_process_memory),
            ("max_unsent_output", self.max_unsent_output),
            ("max_entity_size", self.max_entity_size),
            ("max_decoded_entity", self.max_decoded_entity),
            ("max_handshake_entity_size", self.max_handshake_entity_size),
            (
                "max_handshake_decoded_entity",
                self.max_handshake_decoded_entity,
            ),
            ("max_entity_depth", self.max_entity_depth),
            ("max_exports", self.max_exports),
            ("max_imports", self.max_imports),
            ("max_calls_in_flight", self.max_calls_in_flight),
            ("max_queued_calls", self.max_queued_calls),
            ("max_process_calls", self.max_process_calls.unwrap_or(1)),
        ]
        .into_iter()
        .find(|(_, v)| *v == 0)
        .map(|(name, _)| name)
    }

    /// The settings every connection of one built stack gets: the
    /// process-wide budgets are created here, once.
    pub(crate) fn settings(&self, keep_alive: Option<Duration>) -> StackLinkSettings {
        StackLinkSettings(Arc::new(Shared {
            limits: self.clone(),
            keep_alive,
            memory: MemoryBudget::new(self.max_process_memory),
            calls: self.max_process_calls.map(CallBudget::new),
        }))
    }
}

/// What a built stack applies to every link, left in the connection's
/// extensions (cloning shares the budgets).
#[derive(Debug, Clone)]
pub(crate) struct StackLinkSettings(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    limits: LinkLimits,
    /// Overrides [`LinkConfig::keep_alive_request`](crate::vol::LinkConfig::keep_alive_request)
    /// when set (`StackConfig::keep_alive`).
    keep_alive: Option<Duration>,
    memory: Arc<MemoryBudget>,
    calls: Option<CallBudget>,
}

impl StackLinkSettings {
    /// Overwrite the limits of `options` with the stack's.
    pub(crate) fn apply(&self, options: &mut LinkOptions) {
        let s = &self.0;
        let l = &s.limits;
        if let Some(interval) = s.keep_alive {
            options.protocol.keep_alive_request = Some(interval);
        }
        let m = &mut options.memory;
        m.link_budget = l.max_link_memory;
        m.link_reserve = l.link_memory_reserve;
        m.max_unsent_output = l.max_unsent_output;
        m.process = s.memory.clone();
        let p = &mut options.protocol;
        p.max_entity_size = l.max_entity_size;
        p.max_decoded_bytes = l.max_decoded_entity;
        p.handshake_max_entity_size = l.max_handshake_entity_size;
        p.handshake_max_decoded_bytes = l.max_handshake_decoded_entity;
        p.max_depth = l.max_entity_depth;
        p.tables = TableLimits {
            max_exports: l.max_exports,
            max_imports: l.max_imports,
        };
        let c = &mut options.calls;
        c.max_in_flight = l.max_calls_in_flight;
        c.max_queued = l.max_queued_calls;
        c.budget = s.calls.clone();
    }
}

/// A size in bytes: digits, optionally followed by `KiB`, `MiB` or `GiB`
/// (`_` allowed between digits).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (digits, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '_')) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        u => {
            return Err(format!(
                "invalid size {s:?}: unknown unit {u:?} (bytes, or KiB, MiB, GiB)"
            ))
        }
    };
    let n: usize = digits
        .replace('_', "")
        .parse()
        .map_err(|_| format!("invalid size {s:?} (bytes, or a number with KiB, MiB, GiB)"))?;
    n.checked_mul(1usize << shift)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// `n` bytes for the log: in the largest binary unit that divides it.
pub(crate) fn fmt_size(n: usize) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n != 0 && n.is_multiple_of(1usize << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSize {
    Bytes(u64),
    Text(String),
}

fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = match RawSize::deserialize(d)? {
        RawSize::Bytes(n) => usize::try_from(n).map_err(serde::de::Error::custom)?,
        RawSize::Text(s) => parse_size(&s).map_err(serde::de::Error::custom)?,
    };
    nonzero(n).map_err(serde::de::Error::custom)
}

fn de_nonzero<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    nonzero(usize::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn de_calls<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    let n = usize::deserialize(d)?;
    Ok((n != 0).then_some(n))
}

fn nonzero(n: usize) -> Result<usize, &'static str> {
    if n == 0 {
        Err("0 is not allowed here (this limit cannot be turned off)")
    } else {
        Ok(n)
    }
}

impl fmt::Display for LinkLimits {
    /// `link(...)` with every limit, for the startup log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let z = fmt_size;
        write!(
            f,
            "link(max_link_memory={} link_memory_reserve={} max_process_memory={} \
             max_unsent_output={} max_entity_size={} max_decoded_entity={} \
             max_handshake_entity_size={} max_handshake_decoded_entity={} max_entity_depth={} \
             max_exports={} max_imports={} max_calls_in_flight={} max_queued_calls={} \
             max_process_calls={})",
            z(self.max_link_memory),
            z(self.link_memory_reserve),
            z(self.max_process_memory),
            z(self.max_unsent_output),
            z(self.max_entity_size),
            z(self.max_decoded_entity),
            z(self.max_handshake_entity_size),
            z(self.max_handshake_decoded_entity),
            self.max_entity_depth,
            self.max_exports,
            self.max_imports,
            self.max_calls_in_flight,
            self.max_queued_calls,
            match self.max_process_calls {
                Some(n) => n.to_string(),
                None => "off".into(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_code_defaults() {
        let l = LinkLimits::default();
        let mut o = LinkOptions::default();
        let before = format!("{o:?}");
        l.settings(None).apply(&mut o);
        // Everything but the shared budgets' identity is unchanged.
        assert_eq!(o.memory.link_budget, 192 << 20);
        assert_eq!(o.memory.process.limit(), 512 << 20);
        assert_eq!(o.calls.budget.as_ref().map(|b| b.size()), Some(8192));
        o.calls.budget = None;
        assert_eq!(format!("{o:?}"), before);
    }

    #[test]
    fn toml_sizes_and_zero() {
        let l: LinkLimits = toml::from_str(
            "max_link_memory = \"64MiB\"\nmax_unsent_output = 1_048_576\nmax_exports = 4\n\
             max_process_calls = 0\nmax_decoded_entity = \"4 KiB\"",
        )
        .unwrap();
        assert_eq!(l.max_link_memory, 64 << 20);
        assert_eq!(l.max_unsent_output, 1 << 20);
        assert_eq!(l.max_exports, 4);
        assert_eq!(l.max_process_calls, None);
        assert_eq!(l.max_decoded_entity, 4096);
        for bad in [
            "max_link_memory = 0",
            "max_exports = 0",
            "max_link_memory = \"12 MB\"",
            "max_imports = -1",
            "max_memory = 5",
        ] {
            assert!(toml::from_str::<LinkLimits>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert!(parse_size("").is_err());
        assert!(parse_size("1.5MiB").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
        assert_eq!(fmt_size(192 << 20), "192MiB");
        assert_eq!(fmt_size(105_906_176), "101MiB");
        assert_eq!(fmt_size(1000), "1000");
    }

    #[test]
    fn one_pair_of_budgets_per_built_stack() {
        let s = LinkLimits {
            max_process_memory: 1 << 20,
            max_process_calls: Some(7),
            ..LinkLimits::default()
        }
        .settings(Some(Duration::from_secs(5)));
        let (mut a, mut b) = (LinkOptions::default(), LinkOptions::default());
        s.apply(&mut a);
        s.clone().apply(&mut b);
        assert!(Arc::ptr_eq(&a.memory.process, &b.memory.process));
        assert_eq!(a.memory.process.limit(), 1 << 20);
        let (ca, cb) = (a.calls.budget.unwrap(), b.calls.budget.unwrap());
        assert_eq!((ca.size(), cb.size()), (7, 7));
        assert_eq!(a.protocol.keep_alive_request, Some(Duration::from_secs(5)));
    }
}
