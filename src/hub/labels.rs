//! Connection labels, interned and stored column-wise per shard.
//!
//! Label keys and values are interned to dense `u32` ids (0 means "absent"), shared
//! by every shard so that a filter program compiled once resolves its constants for
//! all of them. Each shard keeps one column of value ids per label key its live
//! connections use and one row per live connection; rows are reused through a free
//! list, and a row never moves while its connection lives. A survey therefore streams
//! contiguous `u32`s instead of chasing a pointer per connection.
//!
//! Nothing here only grows. Every interned string is reference-counted by the
//! connections that carry it and forgotten when the last one leaves; a column is
//! dropped when the last row of its shard that has the key is freed. Freed ids are
//! reused, but never under a reader that may still hold the old meaning: whoever
//! resolves strings to ids and keeps the ids (a compiled filter program, a survey's
//! key table) holds a [`Lease`], and an id freed while a lease taken before the free
//! is alive stays in quarantine until that lease is dropped. Reads (`lookup`,
//! `resolve`) stay lock-free; only connect and disconnect take the interner's lock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use smallvec::SmallVec;

/// Reference-counted string ↔ id table with lock-free reads.
pub struct Interner {
    ids: papaya::HashMap<Arc<str>, u32>,
    strs: papaya::HashMap<u32, Arc<str>>,
    state: Arc<Mutex<State>>,
}

/// The interner's bookkeeping, changed only under its lock.
struct State {
    /// References held on each id (index 0, "absent", is never handed out).
    refs: Vec<u32>,
    /// Ids whose string is interned (`refs > 0`).
    live: usize,
    /// Ids free for reuse now.
    free: Vec<u32>,
    /// `(epoch of the free, id)`, oldest first: reusable once no lease from that epoch
    /// or earlier is alive.
    quarantine: VecDeque<(u64, u32)>,
    /// Bumped by every free, so leases and frees are ordered.
    epoch: u64,
    /// Live leases per epoch they were taken at.
    leases: BTreeMap<u64, usize>,
}

impl Default for State {
    fn default() -> Self {
        State {
            refs: vec![0],
            live: 0,
            free: Vec::new(),
            quarantine: VecDeque::new(),
            epoch: 0,
            leases: BTreeMap::new(),
        }
    }
}

impl State {
    /// An id for a new string: a free one (after releasing what quarantine allows), or
    /// the next unused. Ids are `u32` (the survey's columns); 2^32 live distinct strings
    /// would need hundreds of GiB of strings first, so running out is an invariant
    /// breach, not an input error.
    #[allow(clippy::expect_used, reason = "see above: exhausting u32 ids cannot happen before memory runs out")]
    fn allocate(&mut self) -> u32 {
        let oldest_lease = self.leases.keys().next().copied().unwrap_or(u64::MAX);
        while let Some(&(freed_at, id)) = self.quarantine.front() {
            if freed_at >= oldest_lease {
                break;
            }
            self.quarantine.pop_front();
            self.free.push(id);
        }
        if let Some(id) = self.free.pop() {
            return id;
        }
        let id = u32::try_from(self.refs.len()).ok().filter(|&id| id < u32::MAX).expect("fewer than 2^32-1 label ids");
        self.refs.push(0);
        id
    }
}

/// Keeps the ids its holder resolved from being given to other strings while it lives
/// (see the module docs). Cheap to take: one short lock.
pub struct Lease {
    state: Arc<Mutex<State>>,
    epoch: u64,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut st = self.state.lock();
        if let Some(n) = st.leases.get_mut(&self.epoch) {
            *n -= 1;
            if *n == 0 {
                st.leases.remove(&self.epoch);
            }
        }
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease").field("epoch", &self.epoch).finish()
    }
}

/// Acquiring would take the interner past its cap on distinct strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full {
    pub max: usize,
}

/// Sizes of an interner, for tests and capacity reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InternerStats {
    /// Strings interned now.
    pub live: usize,
    /// Highest id ever handed out (ids are reused, so this tracks the peak).
    pub high_water: usize,
    /// Freed ids waiting for older leases to end.
    pub quarantined: usize,
    /// Leases alive.
    pub leases: usize,
}

impl Default for Interner {
    fn default() -> Self {
        Self { ids: papaya::HashMap::new(), strs: papaya::HashMap::new(), state: Arc::default() }
    }
}

impl Interner {
    /// Takes one reference on each string (interning the new ones, sharing the caller's
    /// allocation), all or nothing: if the new distinct strings would take the table
    /// past `max_live` strings, nothing changes. Ids come back in order.
    pub fn acquire<'s>(
        &self,
        strs: impl Iterator<Item = &'s Arc<str>> + Clone,
        max_live: usize,
    ) -> Result<SmallVec<[u32; 8]>, Full> {
        let mut st = self.state.lock();
        let new = strs
            .clone()
            .enumerate()
            .filter(|&(i, s)| self.lookup(s).is_none() && !strs.clone().take(i).any(|t| t == s))
            .count();
        if new > 0 && st.live + new > max_live {
            return Err(Full { max: max_live });
        }
        Ok(strs.map(|s| self.acquire_locked(&mut st, s)).collect())
    }

    /// [`Interner::acquire`] without a cap (label values): never refused.
    pub fn acquire_all<'s>(&self, strs: impl Iterator<Item = &'s Arc<str>>) -> SmallVec<[u32; 8]> {
        let mut st = self.state.lock();
        strs.map(|s| self.acquire_locked(&mut st, s)).collect()
    }

    fn acquire_locked(&self, st: &mut State, s: &Arc<str>) -> u32 {
        let id = match self.lookup(s) {
            Some(id) => id,
            None => {
                let id = st.allocate();
                st.live += 1;
                // Publish the reverse mapping first so that any id a reader can see resolves.
                self.strs.pin().insert(id, s.clone());
                self.ids.pin().insert(s.clone(), id);
                id
            }
        };
        st.refs[id as usize] += 1;
        id
    }

    /// Takes one reference on `s` (the caller owes a [`Interner::release`]); for tests
    /// and seeding. Ids start at 1.
    pub fn intern(&self, s: &str) -> u32 {
        let s: Arc<str> = Arc::from(s);
        self.acquire_all(std::iter::once(&s))[0]
    }

    /// Drops one reference on each id (0 is ignored); a string whose last reference
    /// goes is forgotten and its id quarantined.
    pub fn release(&self, ids: &[u32]) {
        let mut st = self.state.lock();
        for &id in ids {
            let Some(refs) = st.refs.get_mut(id as usize).filter(|r| **r > 0) else { continue };
            *refs -= 1;
            if *refs > 0 {
                continue;
            }
            if let Some(s) = self.strs.pin().remove(&id) {
                self.ids.pin().remove(s);
            }
            st.live -= 1;
            let epoch = st.epoch;
            st.quarantine.push_back((epoch, id));
            st.epoch += 1;
        }
    }

    /// A lease: ids looked up from now on keep their meaning until it is dropped.
    pub fn lease(&self) -> Lease {
        let mut st = self.state.lock();
        let epoch = st.epoch;
        *st.leases.entry(epoch).or_default() += 1;
        Lease { state: self.state.clone(), epoch }
    }

    /// The id of `s` if it is interned now.
    pub fn lookup(&self, s: &str) -> Option<u32> {
        self.ids.pin().get(s).copied()
    }

    /// The interner's own allocation of `s`, if it is interned now.
    pub fn shared(&self, s: &str) -> Option<Arc<str>> {
        self.ids.pin().get_key_value(s).map(|(k, _)| k.clone())
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

    pub fn stats(&self) -> InternerStats {
        let st = self.state.lock();
        InternerStats {
            live: st.live,
            high_water: st.refs.len() - 1,
            quarantined: st.quarantine.len(),
            leases: st.leases.values().sum(),
        }
    }
}

/// One shard's label table: a column of value ids per key, a row per connection.
///
/// Rows name their connection by client id, not by pointer: a survey then reads only
/// this table's contiguous memory, and touches a connection object only for the few
/// matches a caller goes on to resolve. A column lives while some row has its key.
#[derive(Default)]
pub struct LabelColumns {
    /// Key id of each column.
    keys: Vec<u32>,
    /// Key id → column index.
    column_of: HashMap<u32, usize>,
    /// `columns[c][row]` is the value id of key `keys[c]` for that row (0 = absent).
    columns: Vec<Vec<u32>>,
    /// Rows with a value in each column; the column is dropped when it reaches 0.
    used: Vec<u32>,
    /// The client id occupying each row, [`FREE`] for free rows.
    rows: Vec<u128>,
    /// Bit `r % 64` of word `r / 64` set while row `r` is in use: a survey learns which
    /// rows of a 64-row block are live from one word instead of reading 64 client ids
    /// (16 bytes each) — the row table is 4× the size of a label column.
    live: Vec<u64>,
    free: Vec<u32>,
}

/// The id of a free row (client ids are random UUIDs, never zero).
pub const FREE: u128 = 0;

impl LabelColumns {
    /// Places connection `id` (non-zero) with interned `(key id, value id)` labels
    /// (value ids non-zero) in a row.
    pub fn insert(&mut self, id: u128, labels: &[(u32, u32)]) -> u32 {
        debug_assert_ne!(id, FREE);
        let row = match self.free.pop() {
            Some(r) => r,
            None => {
                self.rows.push(FREE);
                for col in &mut self.columns {
                    col.push(0);
                }
                if self.live.len() * 64 < self.rows.len() {
                    self.live.push(0);
                }
                (self.rows.len() - 1) as u32
            }
        };
        self.rows[row as usize] = id;
        self.live[row as usize / 64] |= 1 << (row % 64);
        for &(key, value) in labels {
            debug_assert_ne!(value, 0);
            let c = self.column_for(key);
            let cell = &mut self.columns[c][row as usize];
            if *cell == 0 {
                self.used[c] += 1;
            }
            *cell = value;
        }
        row
    }

    /// Frees a row whose labels have the key ids `keys`; its values are cleared so a
    /// reused row starts empty, and columns no other row uses are dropped. Returns the
    /// client id that held it.
    pub fn remove(&mut self, row: u32, keys: &[u32]) -> Option<u128> {
        let slot = self.rows.get_mut(row as usize)?;
        let id = std::mem::replace(slot, FREE);
        if id == FREE {
            return None;
        }
        self.live[row as usize / 64] &= !(1 << (row % 64));
        for key in keys {
            let Some(&c) = self.column_of.get(key) else { continue };
            let cell = &mut self.columns[c][row as usize];
            if *cell != 0 {
                *cell = 0;
                self.used[c] -= 1;
                if self.used[c] == 0 {
                    self.drop_column(c);
                }
            }
        }
        debug_assert!(self.columns.iter().all(|col| col[row as usize] == 0), "keys must name every label of the row");
        self.free.push(row);
        Some(id)
    }

    fn column_for(&mut self, key: u32) -> usize {
        if let Some(&c) = self.column_of.get(&key) {
            return c;
        }
        self.keys.push(key);
        self.columns.push(vec![0; self.rows.len()]);
        self.used.push(0);
        let c = self.columns.len() - 1;
        self.column_of.insert(key, c);
        c
    }

    /// Drops column `c` (moving the last column into its place).
    fn drop_column(&mut self, c: usize) {
        let key = self.keys.swap_remove(c);
        self.columns.swap_remove(c);
        self.used.swap_remove(c);
        self.column_of.remove(&key);
        if let Some(&moved) = self.keys.get(c) {
            self.column_of.insert(moved, c);
        }
    }

    /// Column of value ids for a key id, if a live connection of this shard has it.
    pub fn column(&self, key: u32) -> Option<&[u32]> {
        self.column_of.get(&key).map(|&c| self.columns[c].as_slice())
    }

    /// Number of columns (keys some live row of this shard has).
    pub fn num_columns(&self) -> usize {
        self.columns.len()
    }

    /// Every row slot: the client id, or [`FREE`].
    pub fn rows(&self) -> &[u128] {
        &self.rows
    }

    /// Which rows are in use, 64 per word (bit `r % 64` of word `r / 64` for row `r`);
    /// bits past the last row are clear.
    pub fn live_words(&self) -> &[u64] {
        &self.live
    }

    /// Rows in use.
    pub fn live(&self) -> usize {
        self.rows.len() - self.free.len()
    }

    /// Bytes held by the columns and row table (for capacity reports).
    pub fn heap_bytes(&self) -> usize {
        let cols: usize = self.columns.iter().map(|c| c.capacity() * 4).sum();
        cols + self.rows.capacity() * std::mem::size_of::<u128>() + self.live.capacity() * 8 + self.free.capacity() * 4
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
    fn released_strings_are_forgotten_and_ids_reused() {
        let i = Interner::default();
        let a = i.intern("a");
        let b = i.intern("b");
        i.intern("a");
        i.release(&[a]);
        assert_eq!(i.lookup("a"), Some(a), "one reference left");
        i.release(&[a, b]);
        assert_eq!((i.lookup("a"), i.lookup("b"), i.resolve(a)), (None, None, None));
        assert_eq!(i.stats(), InternerStats { live: 0, high_water: 2, quarantined: 2, leases: 0 });
        let c = i.intern("c");
        assert!(c == a || c == b, "a freed id is reused when no lease holds it");
        assert_eq!(i.stats().high_water, 2);
    }

    /// A lease taken before a free keeps the freed id from meaning another string
    /// until it is dropped; a lease taken after the free does not.
    #[test]
    fn a_lease_quarantines_ids_freed_under_it() {
        let i = Interner::default();
        let a = i.intern("a");
        let old = i.lease();
        i.release(&[a]);
        let new = i.lease();
        let b = i.intern("b");
        assert_ne!(b, a, "id of 'a' reused under a lease that may have resolved it");
        drop(old);
        let c = i.intern("c");
        assert_eq!(c, a, "the lease after the free does not hold the id");
        drop(new);
        assert_eq!(i.stats().leases, 0);
    }

    #[test]
    fn acquire_is_all_or_nothing_under_a_cap() {
        let i = Interner::default();
        let s = |v: &[&str]| v.iter().map(|s| Arc::<str>::from(*s)).collect::<Vec<_>>();
        assert_eq!(i.acquire(s(&["a", "b"]).iter(), 3).unwrap().len(), 2);
        assert_eq!(i.acquire(s(&["b", "c", "c"]).iter(), 3).unwrap().len(), 3, "duplicates count once");
        assert_eq!(i.acquire(s(&["a", "d"]).iter(), 3), Err(Full { max: 3 }));
        assert_eq!(i.lookup("d"), None);
        assert_eq!(i.acquire(s(&["a", "b"]).iter(), 3).unwrap().len(), 2, "known strings pass a full table");
    }

    #[test]
    fn rows_are_reused_and_cleared() {
        let mut t = LabelColumns::default();
        let r1 = t.insert(1, &[(1, 10), (2, 20)]);
        let r2 = t.insert(2, &[(1, 11)]);
        assert_eq!(t.column(2).unwrap()[r2 as usize], 0);
        assert_eq!(t.remove(r1, &[1, 2]), Some(1));
        assert_eq!(t.remove(r1, &[1, 2]), None);
        assert!(t.column(2).is_none(), "no live row has key 2");
        let r3 = t.insert(3, &[(1, 12), (2, 21)]);
        assert_eq!(r3, r1);
        assert_eq!(t.column(1).unwrap()[r3 as usize], 12);
        assert_eq!(t.column(2).unwrap()[r2 as usize], 0, "a new column starts empty");
        assert_eq!(t.live(), 2);
        assert_eq!(t.live_words(), &[(1 << r2) | (1 << r3)]);
        t.remove(r2, &[1]);
        t.remove(r3, &[1, 2]);
        assert_eq!((t.num_columns(), t.live()), (0, 0));
        assert_eq!(t.live_words(), &[0]);
    }

    /// The live bitmap says exactly which rows hold a connection, across word
    /// boundaries and row reuse.
    #[test]
    fn live_words_track_rows() {
        let mut t = LabelColumns::default();
        let rows: Vec<u32> = (1..=200u128).map(|id| t.insert(id, &[(1, 1)])).collect();
        for r in rows.iter().filter(|r| *r % 3 == 0) {
            t.remove(*r, &[1]);
        }
        t.insert(1000, &[(1, 2)]);
        let words = t.live_words();
        assert_eq!(words.len(), t.rows().len().div_ceil(64));
        for (r, &id) in t.rows().iter().enumerate() {
            assert_eq!(words[r / 64] >> (r % 64) & 1 == 1, id != FREE, "row {r}");
        }
        assert_eq!(words.iter().map(|w| w.count_ones() as usize).sum::<usize>(), t.live());
    }
}
