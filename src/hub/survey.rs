//! The survey: every connection of the hub whose labels satisfy a compiled filter
//! program, found by streaming each shard's dense label columns (one `u32` per row
//! per referenced key) instead of visiting connection objects.
//!
//! Shards are scanned in parallel on scoped threads; callers run surveys off the
//! async runtime (`tokio::task::spawn_blocking` or a dedicated pool). A shard's
//! columns are read in chunks under its read lock, released between chunks, so
//! connects and disconnects keep flowing while a large survey runs.
//!
//! Consistency: a connection keeps the same row for its whole life and its values
//! never change, so a connection present for the whole survey is seen in its chunk
//! and listed if it matches; a connection absent for the whole survey occupies no
//! row and is never listed. Connections that come or go during the survey may or may
//! not be listed.

use std::sync::Arc;

use smallvec::SmallVec;

use crate::filter::{BlockSource, Hold, LabelSource, Mask, Program, Symbols, attribute};

use super::labels::{Interner, LabelColumns, Lease};
use super::{Hub, Member, Shard};

/// Rows scanned per lock acquisition.
/// A multiple of 64, so every chunk starts on a word of the live bitmap.
const CHUNK: usize = 16 * 1024;
const _: () = assert!(CHUNK.is_multiple_of(64));

/// Below this many connections one thread is faster: spawning scoped threads costs
/// more (~50–100 µs measured on 2 cores) than scanning. Unit tests use 1 so the
/// parallel path is exercised on small hubs.
#[cfg(not(test))]
const PARALLEL_MIN: usize = 200_000;
#[cfg(test)]
const PARALLEL_MIN: usize = 1;

/// A program compiled against the hub's value interner holds a [`Lease`] on it, so a
/// value id it resolved is not reused for another string while the program lives.
impl Symbols for Interner {
    fn value_id(&self, s: &str) -> Option<u32> {
        self.lookup(s)
    }

    fn hold(&self) -> Option<Hold> {
        Some(Hold(Box::new(self.lease())))
    }
}

/// One row of a shard's columns, as a filter program sees it.
struct ColumnRow<'a> {
    columns: &'a [Option<&'a [u32]>],
    row: usize,
    values: &'a Interner,
    guard: &'a papaya::LocalGuard<'a>,
}

impl LabelSource for ColumnRow<'_> {
    const INTERNED: bool = true;

    #[inline]
    fn value_id(&self, k: u16) -> u32 {
        match self.columns[k as usize] {
            Some(col) => col[self.row],
            None => 0,
        }
    }

    fn value_str(&self, k: u16) -> Option<&str> {
        let id = self.value_id(k);
        if id == 0 {
            return None;
        }
        self.values.resolve_in(id, self.guard)
    }
}

impl<C: Member, S> Hub<C, S> {
    /// Client ids of the connections whose labels match `program`, using up to
    /// `threads` threads. Ids, not connections: a survey reads only the label tables;
    /// callers resolve (with [`Hub::get`]) just the matches they need.
    pub fn survey(&self, program: &Program, threads: usize) -> Vec<u128> {
        if program.constant() == Some(false) {
            return Vec::new();
        }
        // Key ids are looked up once; the lease keeps them naming the same keys (a
        // column found by id in a later chunk is that key's, or absent).
        let _lease: Lease = self.label_keys().lease();
        let key_ids: SmallVec<[Option<u32>; 8]> = program.keys().iter().map(|k| self.label_keys().lookup(k)).collect();
        let values = self.label_values();
        self.par_shards(threads, |shard| {
            // Room for every row up front: a broad filter (90% matching) would otherwise
            // spend as long regrowing and copying the id vector as evaluating. Untouched
            // capacity costs address space, not memory.
            let mut out = Vec::with_capacity(shard.len());
            shard.chunks(|t, start| scan_chunk(t, program, &key_ids, values, start, &mut out));
            out
        })
    }

    /// Connections for which `keep` holds, visiting every connection of every shard in
    /// parallel (the interpreted-CEL path, which looks at each connection in full).
    pub fn scan(&self, threads: usize, keep: impl Fn(&C) -> bool + Sync) -> Vec<Arc<C>> {
        self.scan_ahead(threads, &(), keep)
    }

    /// [`Hub::scan`], reaching each connection's memory ahead of `keep` as `ahead`
    /// says (see [`Lookahead`]).
    pub fn scan_ahead(
        &self,
        threads: usize,
        ahead: &impl Lookahead<C>,
        keep: impl Fn(&C) -> bool + Sync,
    ) -> Vec<Arc<C>> {
        self.par_shards(threads, |shard| {
            let map = shard.clients.pin();
            let mut out = Vec::new();
            lookahead(map.values().map(|e| &e.conn), ahead, |c| {
                if keep(c) {
                    out.push(c.clone());
                }
            });
            out
        })
    }

    /// The live connections among `ids` (those that left meanwhile are skipped), in order.
    pub fn resolve(&self, ids: &[u128]) -> Vec<Arc<C>> {
        ids.iter().filter_map(|&id| self.get(id)).collect()
    }

    /// Runs `f` over every shard on up to `threads` scoped threads and concatenates the
    /// results in shard order, copying each element at most once.
    fn par_shards<T: Send>(&self, threads: usize, f: impl Fn(&Shard<C>) -> Vec<T> + Sync) -> Vec<T> {
        let shards = self.shards();
        let threads = if self.len() < PARALLEL_MIN { 1 } else { threads.clamp(1, shards.len()) };
        let parts: Vec<Vec<T>> = if threads == 1 {
            shards.iter().map(&f).collect()
        } else {
            let per = shards.len().div_ceil(threads);
            let f = &f;
            std::thread::scope(|scope| {
                let handles: Vec<_> = shards
                    .chunks(per)
                    .map(|group| scope.spawn(move || group.iter().map(f).collect::<Vec<_>>()))
                    .collect();
                handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
            })
        };
        concat(parts)
    }
}

/// What a scan touches ahead of evaluating a connection, so that the memory misses of
/// many connections overlap instead of following one another. At 1M connections a
/// connection's state is almost never cached: evaluated one by one, nearly all of an
/// interpreted expression's time was the wait for its first line, then for the text
/// it points to.
pub trait Lookahead<C>: Sync {
    /// Prefetches the lines of `c` that evaluation reads, [`FAR`] connections ahead.
    /// Must only compute addresses: `c`'s own memory is not cached yet.
    fn lines(&self, c: &C);
    /// Prefetches what `c` points to that evaluation reads, [`NEAR`] connections ahead
    /// (`c`'s lines, asked for earlier, should have arrived).
    fn targets(&self, c: &C);
}

/// No lookahead.
impl<C> Lookahead<C> for () {
    fn lines(&self, _: &C) {}
    fn targets(&self, _: &C) {}
}

/// How many connections ahead a scan asks for a connection's own lines, and for what
/// they point to. Far enough that a DRAM miss (~100 ns) lands before it is needed at
/// one evaluation per ~100–200 ns; near enough that what arrived is still cached.
const FAR: usize = 16;
const NEAR: usize = 8;
/// Connections taken from the map at once: in a loop this short the CPU overlaps the
/// misses of finding many of them (each map entry is an allocation of its own).
const BATCH: usize = 64;
/// The window of connections in flight: a power of two holding [`FAR`] + [`BATCH`].
const RING: usize = 128;
const _: () = assert!(NEAR < FAR && FAR + BATCH <= RING && RING.is_power_of_two());

/// Runs `each` over `items` in order, calling `ahead.lines` at least [`FAR`] items
/// (taking [`BATCH`] at a time) and `ahead.targets` [`NEAR`] items before `each`
/// reaches an item.
pub fn lookahead<'a, C: 'a>(
    mut items: impl Iterator<Item = &'a Arc<C>>,
    ahead: &impl Lookahead<C>,
    mut each: impl FnMut(&'a Arc<C>),
) {
    let mut ring: [Option<&'a Arc<C>>; RING] = [None; RING];
    let mut pushed = 0;
    let mut fill = |ring: &mut [Option<&'a Arc<C>>; RING], pushed: &mut usize, upto: usize| {
        while *pushed < upto {
            let Some(c) = items.next() else { return };
            ahead.lines(c);
            ring[*pushed % RING] = Some(c);
            *pushed += 1;
        }
    };
    fill(&mut ring, &mut pushed, BATCH);
    for c in ring.iter().take(NEAR).flatten() {
        ahead.targets(c);
    }
    let mut i = 0;
    while i < pushed {
        if pushed <= i + FAR {
            fill(&mut ring, &mut pushed, i + FAR + BATCH);
        }
        if let Some(c) = (i + NEAR < pushed).then(|| ring[(i + NEAR) % RING]).flatten() {
            ahead.targets(c);
        }
        if let Some(c) = ring[i % RING] {
            each(c);
        }
        i += 1;
    }
}

/// Asks the CPU to bring the line holding `p` into its caches; never faults, reads
/// nothing the program sees. The crate's one `unsafe`: stable Rust offers prefetching
/// only as an intrinsic, and a plain load in its place would hold up the core until
/// the line arrives, which is what prefetching avoids.
#[inline(always)]
#[allow(unsafe_code)]
pub fn prefetch<T: ?Sized>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it reads nothing the program observes and cannot
    // fault, whatever the address (SSE, part of every x86_64 target).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Appends every part to the first one (reserving once), so a large first part — one
/// shard's matches — is never copied.
fn concat<T>(parts: Vec<Vec<T>>) -> Vec<T> {
    let total: usize = parts.iter().map(Vec::len).sum();
    let mut parts = parts.into_iter();
    let mut out = parts.next().unwrap_or_default();
    out.reserve(total - out.len());
    for part in parts {
        out.extend(part);
    }
    out
}

impl<C: Send + Sync + 'static> Shard<C> {
    /// Calls `f(columns, start)` for each chunk of [`CHUNK`] rows, taking the read lock
    /// per chunk so connects and disconnects proceed between chunks.
    fn chunks(&self, mut f: impl FnMut(&LabelColumns, usize)) {
        let mut start = 0;
        loop {
            let done = self.with_labels(|t| {
                f(t, start);
                start + CHUNK >= t.rows().len()
            });
            if done {
                return;
            }
            start += CHUNK;
        }
    }
}

fn scan_chunk(
    t: &LabelColumns,
    program: &Program,
    key_ids: &[Option<u32>],
    values: &Interner,
    start: usize,
    out: &mut Vec<u128>,
) {
    let rows = t.rows();
    let end = (start + CHUNK).min(rows.len());
    if start >= end {
        return;
    }
    let columns: SmallVec<[Option<&[u32]>; 8]> = key_ids.iter().map(|k| k.and_then(|k| t.column(k))).collect();
    let guard = values.guard();
    let mut pending: SmallVec<[Mask; 32]> = SmallVec::from_elem(0, program.instructions().len() + 1);
    // Chunks start on a block boundary, so block `b` of the chunk is word `base / 64`
    // of the live bitmap; client ids are read only for the rows that match.
    debug_assert_eq!(start % 64, 0);
    let words = t.live_words();
    let mut base = start;
    while base < end {
        let n = (end - base).min(64);
        let live: Mask = words[base / 64];
        if live != 0 {
            let block = Block { columns: &columns, base, values, guard: &guard };
            let mut hits = program.matches_block(&block, n, live, &mut pending);
            while hits != 0 {
                let i = hits.trailing_zeros() as usize;
                hits &= hits - 1;
                out.push(rows[base + i]);
            }
        }
        base += n;
    }
}

/// Rows `base..base + 64` of a shard's columns, as a filter program sees them.
struct Block<'a> {
    columns: &'a [Option<&'a [u32]>],
    base: usize,
    values: &'a Interner,
    guard: &'a papaya::LocalGuard<'a>,
}

impl BlockSource for Block<'_> {
    type Row<'r>
        = ColumnRow<'r>
    where
        Self: 'r;

    #[inline]
    fn ids(&self, k: u16) -> Option<&[u32]> {
        self.columns[k as usize].map(|c| &c[self.base..])
    }

    fn row(&self, i: usize) -> ColumnRow<'_> {
        ColumnRow { columns: self.columns, row: self.base + i, values: self.values, guard: self.guard }
    }
}

/// One connection's labels and attributes as sorted `(key, value)` slices (the
/// session's own), for evaluating a program against one known connection without the
/// columns.
pub struct SortedLabels<'a> {
    pub program: &'a Program,
    pub labels: &'a [(Arc<str>, Arc<str>)],
    pub attributes: &'a [(Arc<str>, Arc<str>)],
}

impl<'a> SortedLabels<'a> {
    /// What `program` sees of `conn`, as the columns would show it.
    pub fn of<C: Member>(program: &'a Program, conn: &'a C) -> SortedLabels<'a> {
        SortedLabels { program, labels: conn.labels(), attributes: conn.attributes() }
    }
}

impl LabelSource for SortedLabels<'_> {
    const INTERNED: bool = false;

    fn value_id(&self, _k: u16) -> u32 {
        0
    }

    fn value_str(&self, k: u16) -> Option<&str> {
        let key: &str = &self.program.keys()[k as usize];
        let pairs = if attribute::is_reserved(key) { self.attributes } else { self.labels };
        pairs.binary_search_by(|(lk, _)| (**lk).cmp(key)).ok().map(|i| &*pairs[i].1)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicBool, Ordering};

    use crate::filter::{FilterNode, Limits, compile};

    use super::super::tests::{Fake, fake};
    use super::*;

    fn program(hub: &Hub<Fake, ()>, json: &str) -> Program {
        let node: FilterNode = serde_json::from_str(json).unwrap();
        compile(&node, "label_filter", &Limits::default(), hub.label_values()).unwrap()
    }

    #[test]
    fn survey_matches_labels_on_every_thread_count() {
        let hub: Hub<Fake, ()> = Hub::with_shards(4);
        for i in 1..=1000u128 {
            hub.add(fake(i, "u", ["eu", "us", "asia"][(i % 3) as usize])).unwrap();
        }
        let p = program(&hub, r#"{"key":"region","cmp":"eq","val":"eu"}"#);
        for threads in [1, 2, 3, 8] {
            let mut ids = hub.survey(&p, threads);
            ids.sort_unstable();
            let want: Vec<u128> = (1..=1000).filter(|i| i % 3 == 0).collect();
            assert_eq!(ids, want, "{threads} threads");
        }
        let none = program(&hub, r#"{"key":"region","cmp":"eq","val":"mars"}"#);
        assert!(hub.survey(&none, 2).is_empty());
        let scanned = hub.scan(2, |c| c.id.is_multiple_of(100));
        assert_eq!(scanned.len(), 10);
    }

    /// Every item is visited once, in order, and each has its lines asked for at least
    /// FAR items (its targets exactly NEAR items, or from the start) before its visit;
    /// sizes around the window and batch edges.
    #[test]
    fn lookahead_reaches_every_item_ahead_of_its_visit() {
        use std::sync::Mutex;
        #[derive(Default)]
        struct Log(Mutex<Vec<(char, u32)>>);
        impl Lookahead<u32> for Log {
            fn lines(&self, c: &u32) {
                self.0.lock().unwrap().push(('l', *c));
            }
            fn targets(&self, c: &u32) {
                self.0.lock().unwrap().push(('t', *c));
            }
        }
        for n in [0, 1, NEAR - 1, NEAR, FAR, BATCH - 1, BATCH, BATCH + 1, FAR + BATCH, RING + 1, 1000] {
            let items: Vec<Arc<u32>> = (0..n as u32).map(Arc::new).collect();
            let log = Log::default();
            let mut seen = Vec::new();
            lookahead(items.iter(), &log, |c| {
                log.0.lock().unwrap().push(('v', **c));
                seen.push(**c);
            });
            assert_eq!(seen, (0..n as u32).collect::<Vec<_>>(), "n={n}");
            let log = log.0.into_inner().unwrap();
            let at = |kind: char, c: u32| {
                let mut hits = log.iter().enumerate().filter(|(_, e)| **e == (kind, c));
                let first = hits.next().map(|(i, _)| i);
                assert!(hits.next().is_none(), "n={n}: {kind} {c} twice");
                first.unwrap_or_else(|| panic!("n={n}: no {kind} for {c}"))
            };
            let visits_before = |i: usize| log[..i].iter().filter(|e| e.0 == 'v').count();
            for c in 0..n as u32 {
                let (l, t, v) = (at('l', c), at('t', c), at('v', c));
                assert!(l < t && t < v, "n={n}: item {c} reached out of order");
                let visited = visits_before(v);
                assert!(visits_before(l) + FAR <= visited || visits_before(l) == 0, "n={n}: lines of {c} late");
                assert!(visits_before(t) + NEAR == visited || visits_before(t) == 0, "n={n}: targets of {c} late");
            }
        }
    }

    /// Freed rows inside blocks (and a partial last block) are skipped by the live
    /// bitmap, and reused rows are seen again; the answer matches a plain filter.
    #[test]
    fn survey_skips_free_rows() {
        let hub: Hub<Fake, ()> = Hub::with_shards(1);
        let region = |i: u128| ["eu", "us"][(i % 2) as usize];
        for i in 1..=300u128 {
            hub.add(fake(i, "u", region(i))).unwrap();
        }
        for i in (3..=300u128).step_by(3) {
            hub.remove(i);
        }
        for i in 1001..=1040u128 {
            hub.add(fake(i, "u", region(i))).unwrap();
        }
        let p = program(&hub, r#"{"key":"region","cmp":"eq","val":"eu"}"#);
        let mut ids = hub.survey(&p, 1);
        ids.sort_unstable();
        let want: Vec<u128> =
            (1..=300).chain(1001..=1040).filter(|i| i % 2 == 0 && (*i > 1000 || i % 3 != 0)).collect();
        assert_eq!(ids, want);
        let all = program(&hub, r#"{"key":"region","cmp":"ex"}"#);
        assert_eq!(hub.survey(&all, 1).len(), 300 - 100 + 40);
    }

    /// Connections present for the whole survey are always listed; connections that
    /// are never present are never listed, however fast others come and go (rows
    /// freed and reused, columns growing) while surveys run.
    #[test]
    fn survey_is_consistent_under_churn() {
        let hub: Hub<Fake, ()> = Hub::with_shards(2);
        // Chunks of 16k rows: use enough rows that a survey takes several lock turns.
        let stable: Vec<u128> = (1..=40_000).collect();
        for &id in &stable {
            hub.add(fake(id, "stable", "eu")).unwrap();
        }
        let p = program(&hub, r#"{"key":"region","cmp":"eq","val":"eu"}"#);
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            // Churn: ids from 1_000_000 up come and go, half of them in the eu region,
            // some with an extra label key that adds a column mid-survey.
            s.spawn(|| {
                let mut next = 1_000_000u128;
                let mut live = std::collections::VecDeque::new();
                while !stop.load(Ordering::Relaxed) {
                    let region = if next.is_multiple_of(2) { "eu" } else { "us" };
                    let mut f = Fake { id: next, user: "churn".into(), labels: vec![("region".into(), region.into())] };
                    if next.is_multiple_of(7) {
                        f.labels.push((format!("k{}", next % 50).into(), "v".into()));
                        f.labels.sort();
                    }
                    hub.add(Arc::new(f)).unwrap();
                    live.push_back(next);
                    next += 1;
                    if live.len() > 2_000 {
                        hub.remove(live.pop_front().unwrap());
                    }
                }
            });
            for _ in 0..30 {
                let ids: HashSet<u128> = hub.survey(&p, 2).into_iter().collect();
                for id in &stable {
                    assert!(ids.contains(id), "stable connection {id} missing from a survey");
                }
                for id in &ids {
                    assert!(*id <= 40_000 || *id >= 1_000_000, "never-present id {id} listed");
                    assert!(*id <= 40_000 || id.is_multiple_of(2), "non-matching churn connection {id} listed");
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
    }
}
