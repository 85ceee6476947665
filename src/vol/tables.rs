//! Export and import tables with reference counts (`vol.md` §5).
//!
//! The export table maps our ids to our objects and counts how often each
//! was sent as `FC`; the import table counts how often each peer id was
//! received. Releases follow §5.2: the importer notifies its total count, the
//! owner confirms only an exact match, the importer keeps its entry until the
//! confirmation arrives.

use std::collections::HashMap;

/// Identity of a local object, so that the same object keeps one id while it
/// stays exported (`vol.md` §5.1).
pub trait ExportKey {
    /// A value equal for two handles exactly when they denote the same object.
    fn export_key(&self) -> usize;
}

/// What an export-table entry holds.
#[derive(Debug, Clone)]
pub(crate) enum Exported<L> {
    /// Our handshake object (`vol.md` §2.3), handled inside the link.
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
    entries: HashMap<i64, ExportEntry<L>>,
    by_key: HashMap<usize, i64>,
    next_id: i64,
}

impl<L: Clone + ExportKey> ExportTable<L> {
    pub(crate) fn new() -> Self {
        ExportTable {
            entries: HashMap::new(),
            by_key: HashMap::new(),
            // Ids start at 1 and are never reused (`vol.md` §5.1).
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

#[derive(Debug, Default)]
pub(crate) struct ImportTable {
    entries: HashMap<i64, ImportEntry>,
}

impl ImportTable {
    /// Count one received `FC id`.
    pub(crate) fn receive(&mut self, id: i64) {
        self.entries.entry(id).or_default().received += 1;
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
        // Stale counts are ignored, the exact count releases (`vol.md` §5.2).
        assert!(!t.release(2, 1));
        assert!(!t.release(2, 3));
        assert!(t.release(2, 2));
        assert!(t.get(2).is_none());
        // Sent again: a fresh id.
        assert_eq!(t.send(&Obj(7)), 4);
        assert!(!t.release(99, 1));
    }

    #[test]
    fn import_release_and_confirm() {
        let mut t = ImportTable::default();
        t.receive(3);
        t.receive(3);
        assert_eq!(t.release(3), Some(2));
        assert_eq!(t.release(3), None);
        // Received again before the confirmation: the stale confirm is ignored.
        t.receive(3);
        assert!(!t.confirm(3));
        assert_eq!(t.release(3), Some(3));
        assert!(t.confirm(3));
        assert!(t.is_empty());
    }
}
