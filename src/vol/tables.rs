//! Export and import tables with reference counts (`docs/protocol/vol.md` §5).
//!
//! The export table maps our ids to our objects and counts how often each
//! was sent as `FC`; the import table counts how often each peer id was
//! received. Releases follow §5.2: the importer notifies its total count, the
//! owner confirms only an exact match, the importer keeps its entry until the
//! confirmation arrives.
//!
//! Both tables grow with what the peer does (every `urlget` exports a new
//! object; every new `FC` id is an import), so the link bounds their sizes
//! with [`TableLimits`]; the tables only answer what an operation would add.

use std::collections::hash_map::RandomState as SipRandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;

use foldhash::fast::SeedableRandomState;

/// The tables' maps: foldhash instead of std's SipHash (every call looks up
/// its target, so the hash is on the per-call path), seeded per table with
/// a secret drawn from std's randomly keyed `RandomState`. Also used for
/// the method names of published objects (`object::builder`), whose keys
/// are the application's and which peers only look up.
///
/// HashDoS: the export table is keyed by ids we allocate (sequential, never
/// reused) and by object addresses, which a peer does not choose; only
/// lookups take peer ids, and they probe a table whose layout we chose. The
/// import table is keyed by peer-chosen ids, but the peer cannot compute
/// collisions without the secret seed, and the table is bounded by
/// [`TableLimits::max_imports`] (default 1024), so even a table that
/// collided entirely would cost at most that many probes per operation.
pub(crate) type TableMap<K, V> = HashMap<K, V, SeedableRandomState>;

pub(crate) fn table_map<K, V>() -> TableMap<K, V> {
    let secret = SipRandomState::new().hash_one(0u64);
    HashMap::with_hasher(SeedableRandomState::with_seed(
        secret,
        foldhash::SharedSeed::global_random(),
    ))
}

/// Bounds on the object tables of one link (`docs/protocol/vol.md` §5.1). The protocol
/// has no way to refuse a reference, so the link enforces them as the spec
/// allows: an outgoing value that would export too many objects is not sent
/// (a response becomes CALL_ERROR, `docs/protocol/vol.md` §4.5, as for any value that
/// cannot be converted; our own call fails locally), and a peer that makes
/// us import too many references loses the link (`docs/protocol/vol.md` §3.9 closes on
/// what the receiver cannot process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLimits {
    /// Objects exported at once (entries in the export table, the handshake
    /// object and gateway included). Default 1024: Python applications
    /// hold a handful to a few hundred objects per link, while a peer that
    /// resolves `urlget` in a loop without releasing would otherwise grow
    /// the table (and keep every object alive) forever; 1024 entries cost
    /// about 100 KiB of table plus the objects themselves. Each refused
    /// value counts `limit="exported_objects"`. Values below 2 are raised
    /// to 2: the handshake needs its object and the gateway.
    pub max_exports: usize,
    /// Peer objects imported at once (distinct ids in the import table,
    /// entries awaiting CONFIRM_DEREF included). Default 1024, for the same
    /// reasons: each entry costs a table slot and a handle (about 150 bytes),
    /// and a peer chooses how many ids it sends, also in responses to calls
    /// we never made (`docs/protocol/vol.md` §3.4), which are counted too. The closing
    /// counts `limit="imported_objects"`. Values below 2 are raised to 2
    /// (the peer's handshake object and gateway).
    pub max_imports: usize,
}

/// The smallest table limit: the handshake needs two entries (`docs/protocol/vol.md` §2.1).
const MIN_TABLE_LIMIT: usize = 2;

impl TableLimits {
    pub(crate) fn export_limit(&self) -> usize {
        self.max_exports.max(MIN_TABLE_LIMIT)
    }

    pub(crate) fn import_limit(&self) -> usize {
        self.max_imports.max(MIN_TABLE_LIMIT)
    }
}

impl Default for TableLimits {
    fn default() -> Self {
        TableLimits {
            max_exports: 1024,
            max_imports: 1024,
        }
    }
}

/// Identity of a local object, so that the same object keeps one id while it
/// stays exported (`docs/protocol/vol.md` §5.1).
pub trait ExportKey {
    /// A value equal for two handles exactly when they denote the same object.
    fn export_key(&self) -> usize;
}

/// What an export-table entry holds.
#[derive(Debug, Clone)]
pub(crate) enum Exported<L> {
    /// Our handshake object (`docs/protocol/vol.md` §2.3), handled inside the link.
    Handshake,
    /// An application object.
    Object(L),
}

#[derive(Debug)]
struct ExportEntry<L> {
    object: Exported<L>,
    key: Option<usize>,
    sends: u64,
}

#[derive(Debug)]
pub(crate) struct ExportTable<L> {
    entries: TableMap<i64, ExportEntry<L>>,
    by_key: TableMap<usize, i64>,
    next_id: i64,
}

impl<L: Clone + ExportKey> ExportTable<L> {
    pub(crate) fn new() -> Self {
        ExportTable {
            entries: table_map(),
            by_key: table_map(),
            // Ids start at 1 and are never reused (`docs/protocol/vol.md` §5.1).
            next_id: 1,
        }
    }

    /// Export the handshake object under a fresh id (counted as one send).
    pub(crate) fn export_handshake(&mut self) -> i64 {
        let id = self.allocate();
        self.entries.insert(
            id,
            ExportEntry {
                object: Exported::Handshake,
                key: None,
                sends: 1,
            },
        );
        id
    }

    /// The id to write as `FC` for `object`, adding one to its send count.
    pub(crate) fn send(&mut self, object: &L) -> i64 {
        let key = object.export_key();
        if let Some(&id) = self.by_key.get(&key) {
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.sends += 1;
                return id;
            }
        }
        let id = self.allocate();
        self.by_key.insert(key, id);
        self.entries.insert(
            id,
            ExportEntry {
                object: Exported::Object(object.clone()),
                key: Some(key),
                sends: 1,
            },
        );
        id
    }

    fn allocate(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// How many entries sending the objects with these [`ExportKey`]s
    /// would add: the distinct ones not exported yet.
    pub(crate) fn new_entries(&self, keys: impl IntoIterator<Item = usize>) -> usize {
        let mut keys: Vec<usize> = keys
            .into_iter()
            .filter(|k| !self.by_key.contains_key(k))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys.len()
    }

    pub(crate) fn get(&self, id: i64) -> Option<&Exported<L>> {
        self.entries.get(&id).map(|e| &e.object)
    }

    /// Handle `NOTIFY_DEREF (id, count)`: remove on an exact match (§5.2).
    /// Returns whether the entry was removed (then CONFIRM_DEREF is due).
    pub(crate) fn release(&mut self, id: i64, count: u64) -> bool {
        match self.entries.get(&id) {
            Some(entry) if entry.sends == count => {
                if let Some(entry) = self.entries.remove(&id) {
                    if let Some(key) = entry.key {
                        self.by_key.remove(&key);
                    }
                }
                true
            }
            _ => false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[derive(Debug, Default)]
struct ImportEntry {
    received: u64,
    /// The count sent in our last NOTIFY_DEREF, if any.
    notified: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct ImportTable {
    entries: TableMap<i64, ImportEntry>,
}

impl Default for ImportTable {
    fn default() -> Self {
        ImportTable {
            entries: table_map(),
        }
    }
}

impl ImportTable {
    /// Count one received `FC id`; a new id is refused when the table
    /// already holds `limit` entries (nothing is recorded then).
    pub(crate) fn receive(&mut self, id: i64, limit: usize) -> Result<(), ImportLimit> {
        if !self.entries.contains_key(&id) && self.entries.len() >= limit {
            return Err(ImportLimit);
        }
        self.entries.entry(id).or_default().received += 1;
        Ok(())
    }

    pub(crate) fn contains(&self, id: i64) -> bool {
        self.entries.contains_key(&id)
    }

    /// The total count to send in NOTIFY_DEREF when the last local handle
    /// for `id` is gone, or `None` if the id is not imported.
    pub(crate) fn release(&mut self, id: i64) -> Option<u64> {
        let entry = self.entries.get_mut(&id)?;
        if entry.notified == Some(entry.received) {
            return None; // already notified with this total
        }
        entry.notified = Some(entry.received);
        Some(entry.received)
    }

    /// Handle CONFIRM_DEREF: drop the entry if the confirmation matches what
    /// we notified and nothing was received since (§5.2 step 4).
    pub(crate) fn confirm(&mut self, id: i64) -> bool {
        match self.entries.get(&id) {
            Some(e) if e.notified == Some(e.received) => {
                self.entries.remove(&id);
                true
            }
            _ => false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A new import was refused: the table is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ImportLimit;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug)]
    struct Obj(usize);
    impl ExportKey for Obj {
        fn export_key(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn ids_count_and_are_never_reused() {
        let mut t = ExportTable::new();
        assert_eq!(t.export_handshake(), 1);
        assert_eq!(t.send(&Obj(7)), 2);
        assert_eq!(t.send(&Obj(7)), 2);
        assert_eq!(t.send(&Obj(8)), 3);
        // Stale counts are ignored, the exact count releases (`docs/protocol/vol.md` §5.2).
        assert!(!t.release(2, 1));
        assert!(!t.release(2, 3));
        assert!(t.release(2, 2));
        assert!(t.get(2).is_none());
        // Sent again: a fresh id.
        assert_eq!(t.send(&Obj(7)), 4);
        assert!(!t.release(99, 1));
    }

    #[test]
    fn new_entries_counts_distinct_unexported_objects() {
        let mut t = ExportTable::new();
        t.send(&Obj(1));
        assert_eq!(t.new_entries([1, 2, 2, 3]), 2);
        assert_eq!(t.new_entries([]), 0);
    }

    #[test]
    fn import_limit_refuses_new_ids_only() {
        let mut t = ImportTable::default();
        t.receive(1, 2).unwrap();
        t.receive(2, 2).unwrap();
        assert_eq!(t.receive(3, 2), Err(ImportLimit));
        assert!(!t.contains(3));
        // Known ids keep counting.
        t.receive(1, 2).unwrap();
        assert_eq!(t.release(1), Some(2));
    }

    #[test]
    fn import_release_and_confirm() {
        let mut t = ImportTable::default();
        t.receive(3, 10).unwrap();
        t.receive(3, 10).unwrap();
        assert_eq!(t.release(3), Some(2));
        assert_eq!(t.release(3), None);
        // Received again before the confirmation: the stale confirm is ignored.
        t.receive(3, 10).unwrap();
        assert!(!t.confirm(3));
        assert_eq!(t.release(3), Some(3));
        assert!(t.confirm(3));
        assert!(t.is_empty());
    }
}
