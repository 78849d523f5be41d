//! Connection labels, interned and stored column-wise per shard.
//!
//! Label keys and values are interned to dense `u32` ids (0 means "absent"), shared
//! by every shard so that a filter program compiled once resolves its constants for
//! all of them. Each shard keeps one column of value ids per label key it has seen
//! and one row per live connection; rows are reused through a free list, and a row
//! never moves while its connection lives. A survey therefore streams contiguous
//! `u32`s instead of chasing a pointer per connection.
//!
//! The interner only grows: label values come from signed tokens (or the connect
//! proxy), so their variety is the operator's to bound.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

/// Append-only string ↔ id table with lock-free reads.
pub struct Interner {
    ids: papaya::HashMap<Arc<str>, u32>,
    strs: papaya::HashMap<u32, Arc<str>>,
    next: Mutex<u32>,
}

impl Default for Interner {
    fn default() -> Self {
        Self { ids: papaya::HashMap::new(), strs: papaya::HashMap::new(), next: Mutex::new(1) }
    }
}

impl Interner {
    /// The id of `s`, allocating one if it is new. Ids start at 1.
    pub fn intern(&self, s: &str) -> u32 {
        if let Some(id) = self.lookup(s) {
            return id;
        }
        let mut next = self.next.lock();
        if let Some(id) = self.lookup(s) {
            return id;
        }
        let id = *next;
        *next += 1;
        let s: Arc<str> = Arc::from(s);
        // Publish the reverse mapping first so that any id a reader can see resolves.
        self.strs.pin().insert(id, s.clone());
        self.ids.pin().insert(s, id);
        id
    }

    /// The id of `s` if it was ever interned.
    pub fn lookup(&self, s: &str) -> Option<u32> {
        self.ids.pin().get(s).copied()
    }

    /// The string behind an id.
    pub fn resolve(&self, id: u32) -> Option<Arc<str>> {
        self.strs.pin().get(&id).cloned()
    }

    /// A guard under which [`Interner::resolve_in`] borrows strings without cloning.
    pub fn guard(&self) -> papaya::LocalGuard<'_> {
        self.strs.guard()
    }

    /// The string behind an id, borrowed for the guard's lifetime.
    pub fn resolve_in<'g>(&self, id: u32, guard: &'g papaya::LocalGuard<'_>) -> Option<&'g str> {
        self.strs.get(&id, guard).map(|s| &**s)
    }

    /// Number of interned strings.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One shard's label table: a column of value ids per key, a row per connection.
///
/// Rows name their connection by client id, not by pointer: a survey then reads only
/// this table's contiguous memory, and touches a connection object only for the few
/// matches a caller goes on to resolve.
#[derive(Default)]
pub struct LabelColumns {
    /// Key id of each column.
    keys: Vec<u32>,
    /// Key id → column index.
    column_of: HashMap<u32, usize>,
    /// `columns[c][row]` is the value id of key `keys[c]` for that row (0 = absent).
    columns: Vec<Vec<u32>>,
    /// The client id occupying each row, [`FREE`] for free rows.
    rows: Vec<u128>,
    free: Vec<u32>,
}

/// The id of a free row (client ids are random UUIDs, never zero).
pub const FREE: u128 = 0;

impl LabelColumns {
    /// Places connection `id` (non-zero) with interned `(key id, value id)` labels in a row.
    pub fn insert(&mut self, id: u128, labels: &[(u32, u32)]) -> u32 {
        debug_assert_ne!(id, FREE);
        let row = match self.free.pop() {
            Some(r) => r,
            None => {
                self.rows.push(FREE);
                for col in &mut self.columns {
                    col.push(0);
                }
                (self.rows.len() - 1) as u32
            }
        };
        self.rows[row as usize] = id;
        for &(key, value) in labels {
            let c = self.column_for(key);
            self.columns[c][row as usize] = value;
        }
        row
    }

    /// Frees a row; its values are cleared so a reused row starts empty. Returns the
    /// client id that held it.
    pub fn remove(&mut self, row: u32) -> Option<u128> {
        let slot = self.rows.get_mut(row as usize)?;
        let id = std::mem::replace(slot, FREE);
        if id == FREE {
            return None;
        }
        for col in &mut self.columns {
            col[row as usize] = 0;
        }
        self.free.push(row);
        Some(id)
    }

    fn column_for(&mut self, key: u32) -> usize {
        if let Some(&c) = self.column_of.get(&key) {
            return c;
        }
        self.keys.push(key);
        self.columns.push(vec![0; self.rows.len()]);
        let c = self.columns.len() - 1;
        self.column_of.insert(key, c);
        c
    }

    /// Column of value ids for a key id, if any connection of this shard ever had it.
    pub fn column(&self, key: u32) -> Option<&[u32]> {
        self.column_of.get(&key).map(|&c| self.columns[c].as_slice())
    }

    /// Every row slot: the client id, or [`FREE`].
    pub fn rows(&self) -> &[u128] {
        &self.rows
    }

    /// Rows in use.
    pub fn live(&self) -> usize {
        self.rows.len() - self.free.len()
    }

    /// Bytes held by the columns and row table (for capacity reports).
    pub fn heap_bytes(&self) -> usize {
        let cols: usize = self.columns.iter().map(|c| c.capacity() * 4).sum();
        cols + self.rows.capacity() * std::mem::size_of::<u128>() + self.free.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interner_is_stable() {
        let i = Interner::default();
        let a = i.intern("eu");
        assert_eq!(i.intern("eu"), a);
        assert_ne!(i.intern("us"), a);
        assert_eq!(&*i.resolve(a).unwrap(), "eu");
        assert_eq!(i.lookup("asia"), None);
    }

    #[test]
    fn rows_are_reused_and_cleared() {
        let mut t = LabelColumns::default();
        let r1 = t.insert(1, &[(1, 10), (2, 20)]);
        let r2 = t.insert(2, &[(1, 11)]);
        assert_eq!(t.column(2).unwrap()[r2 as usize], 0);
        assert_eq!(t.remove(r1), Some(1));
        assert_eq!(t.remove(r1), None);
        let r3 = t.insert(3, &[(1, 12)]);
        assert_eq!(r3, r1);
        assert_eq!(t.column(2).unwrap()[r3 as usize], 0, "reused row must not keep old values");
        assert_eq!(t.column(1).unwrap()[r3 as usize], 12);
        assert_eq!(t.live(), 2);
    }
}
