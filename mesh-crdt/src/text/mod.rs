//! The text CRDT.
//!
//! Long on purpose: the run/chunk layout, local edits and remote integration all work
//! on the same private representation. The encoding (`encoding`) and updates as bytes
//! (`update`) are child modules, which see it without its being exposed.
//!
//! ## Algorithm
//!
//! A sequence CRDT in the YATA family (the algorithm of Yjs): every inserted character
//! has an id (replica, sequence number) and remembers its neighbours at insertion —
//! `origin_left`, the character it was typed after, and `origin_right`, the one that
//! followed. A remote insertion goes right of its left origin; when concurrent
//! insertions compete for the same gap, a deterministic scan over them orders the
//! runs by origins and replica id so that each replica's run stays contiguous: two
//! people typing "abc" and "xyz" at the same place get "abcxyz" or "xyzabc", never
//! "axbycz" — forwards or backwards. (Fractional indexing, which the reference system
//! used, interleaves; RGA interleaves text typed backwards.) Deleted characters stay as
//! tombstones, so later insertions can still find their origins.
//!
//! ## Representation
//!
//! Characters typed one after another by one replica form a *run*: one record with a
//! length, whose characters' origins are implied (each one's left origin is the
//! previous one). Runs live in chunks of at most [`CHUNK`] with their visible length,
//! so a position is found by skipping chunks, starting from where the last edit was
//! (typing is local). Most local edits need no search at all: the document remembers
//! where the last one left off (see `Edit`), and typing on, backspacing or deleting
//! forwards continue there. Content is kept per replica in insertion order, as bytes
//! while it is ASCII. Memory is proportional to the number of runs and the inserted
//! text — not one object per character.

mod content;
mod encoding;
mod update;

use std::collections::HashMap;

use content::Content;

use crate::{ReplicaId, VectorClock};

/// Most runs per chunk.
pub const CHUNK: usize = 64;

/// The most characters (visible and deleted) a decoded document may hold: deleted
/// content is not encoded, so a few bytes can describe many characters, and decoding
/// refuses to allocate past this.
pub const MAX_CHARS: usize = 1 << 26;

/// A character's portable id: the replica that inserted it and its sequence number there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CharId {
    /// The inserting replica.
    pub replica: ReplicaId,
    /// Its count of characters inserted before this one.
    pub seq: u32,
}

/// An operation, to send to other replicas ([`TextDoc::apply`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum TextOp {
    /// `text` was inserted: its characters have ids `id`, `id + 1`, …
    Insert {
        /// The first character's id.
        id: CharId,
        /// The character it was typed after, if any.
        origin_left: Option<CharId>,
        /// The character that followed, if any.
        origin_right: Option<CharId>,
        /// The characters.
        text: String,
    },
    /// Characters were deleted: `len` ids from each `CharId`.
    Delete {
        /// The deleted ranges.
        ranges: Vec<(CharId, u32)>,
    },
}

/// A local id: the replica's index in this document and a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Id {
    agent: u32,
    seq: u32,
}

/// The agent index of no character.
const NONE: u32 = u32::MAX;

impl Id {
    /// No character (an absent origin).
    const NONE: Id = Id {
        agent: NONE,
        seq: 0,
    };
}

/// Queues `op` behind those waiting for dependencies; past [`MAX_PENDING_OPS`] the
/// oldest waiting one is dropped and `resync` set (a full state from a peer heals it).
pub(crate) fn wait<T>(pending: &mut Vec<T>, op: T, resync: &mut bool) {
    if pending.len() >= crate::MAX_PENDING_OPS {
        pending.remove(0);
        *resync = true;
    }
    pending.push(op);
}

/// A run of characters typed one after another by one replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    agent: u32,
    seq: u32,
    len: u32,
    /// The first character's left origin (`agent == NONE`: none).
    left: Id,
    /// Every character's right origin (`agent == NONE`: none).
    right: Id,
    deleted: bool,
}

impl Run {
    fn contains(&self, id: Id) -> bool {
        self.agent == id.agent && id.seq >= self.seq && id.seq < self.seq + self.len
    }

    fn visible(&self) -> u32 {
        if self.deleted { 0 } else { self.len }
    }

    fn last(&self) -> Id {
        Id {
            agent: self.agent,
            seq: self.seq + self.len - 1,
        }
    }

    /// Splits at `at` characters: `self` keeps the head, the tail is returned.
    fn split(&mut self, at: u32) -> Run {
        let tail = Run {
            agent: self.agent,
            seq: self.seq + at,
            len: self.len - at,
            left: Id {
                agent: self.agent,
                seq: self.seq + at - 1,
            },
            right: self.right,
            deleted: self.deleted,
        };
        self.len = at;
        tail
    }
}

#[derive(Debug, Clone, Default)]
struct Chunk {
    runs: Vec<Run>,
    visible: usize,
}

#[derive(Debug, Clone)]
struct Agent {
    replica: ReplicaId,
    content: Content,
}

/// Where a run is: chunk and index in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    chunk: usize,
    run: usize,
}

impl Loc {
    /// Where this is after chunk `c` was split in two at `CHUNK / 2` runs.
    fn after_split(self, c: usize) -> Loc {
        if self.chunk > c {
            Loc {
                chunk: self.chunk + 1,
                run: self.run,
            }
        } else if self.chunk == c && self.run > CHUNK / 2 {
            Loc {
                chunk: c + 1,
                run: self.run - CHUNK / 2,
            }
        } else {
            self
        }
    }
}

/// Where the last local edit left off.
#[derive(Debug, Clone, Copy)]
struct Edit {
    /// The visible position.
    pos: usize,
    /// Its boundary: what [`TextDoc::boundary_after`] returns for `pos`.
    at: Loc,
    /// Where the next visible character may be: only tombstones lie between `at` and
    /// here (deleting forwards skips them).
    ahead: Loc,
}

impl Edit {
    /// Left off at `pos`, whose boundary is `at`, with nothing known beyond it.
    fn at(pos: usize, at: Loc) -> Option<Edit> {
        Some(Edit { pos, at, ahead: at })
    }
}

/// A shared text document: edit locally by character index, send the returned
/// operations to other replicas, apply theirs in any causal order (or merge whole
/// states); every replica that has seen the same operations shows the same text.
#[derive(Debug, Clone)]
pub struct TextDoc {
    replica: ReplicaId,
    me: u32,
    agents: Vec<Agent>,
    index: HashMap<ReplicaId, u32>,
    chunks: Vec<Chunk>,
    len: usize,
    /// The chunk of the last edit and the visible length before it.
    cursor: (usize, usize),
    /// Remote operations waiting for what they depend on.
    pending: Vec<TextOp>,
    /// Waiting operations were dropped (over the limit) since the last merge.
    resync: bool,
    /// The chunk where the last lookup by id succeeded.
    hint: usize,
    /// Edits since chunks were last checked for size (splits can overfill them).
    unbalanced: u32,
    /// Where the last local edit left off. Most edits continue there — typing on,
    /// deleting backwards or forwards — and skip the search. Cleared by everything
    /// else that moves runs.
    edit: Option<Edit>,
    /// A run was split since the last [`rebalance`](Self::rebalance).
    grew: bool,
}

impl TextDoc {
    /// An empty document edited by `replica`.
    pub fn new(replica: ReplicaId) -> Self {
        Self::assemble(replica, Vec::new(), HashMap::new(), vec![Chunk::default()])
    }

    /// A document of `agents`' characters (`index` finds them by replica), laid out in
    /// `chunks`, edited by `replica`.
    fn assemble(
        replica: ReplicaId,
        agents: Vec<Agent>,
        index: HashMap<ReplicaId, u32>,
        chunks: Vec<Chunk>,
    ) -> Self {
        let len = chunks.iter().map(|c| c.visible).sum();
        let mut doc = Self {
            replica,
            me: 0,
            agents,
            index,
            chunks,
            len,
            cursor: (0, 0),
            pending: Vec::new(),
            resync: false,
            hint: 0,
            unbalanced: 0,
            edit: None,
            grew: false,
        };
        doc.me = doc.agent(replica);
        doc
    }

    /// This replica's id.
    pub fn replica(&self) -> ReplicaId {
        self.replica
    }

    /// The number of visible characters.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the document is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The text.
    pub fn text(&self) -> String {
        let mut out = String::with_capacity(self.len);
        for run in self.chunks.iter().flat_map(|c| &c.runs) {
            if !run.deleted {
                self.agents[run.agent as usize].content.append_to(
                    run.seq as usize,
                    run.len as usize,
                    &mut out,
                );
            }
        }
        out
    }

    /// How many characters of each replica this document has seen.
    pub fn version(&self) -> VectorClock {
        let mut v = VectorClock::new();
        for a in &self.agents {
            if a.content.len() > 0 {
                v.observe(a.replica, a.content.len() as u64);
            }
        }
        v
    }

    /// How many runs and chunks hold the document (for diagnostics).
    pub fn shape(&self) -> (usize, usize) {
        (
            self.chunks.iter().map(|c| c.runs.len()).sum(),
            self.chunks.len(),
        )
    }

    /// Operations received whose dependencies have not arrived yet (at most
    /// [`MAX_PENDING_OPS`](crate::MAX_PENDING_OPS)).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Whether waiting operations were dropped because too many waited: this replica
    /// should [`merge`](Self::merge) a peer's whole state (or decode one) to be sure
    /// it has everything. Cleared by `merge`.
    pub fn needs_resync(&self) -> bool {
        self.resync
    }

    /// The bytes this document holds on the heap (runs, content, indexes).
    pub fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + self
                .chunks
                .iter()
                .map(|c| c.runs.capacity() * std::mem::size_of::<Run>())
                .sum::<usize>()
            + self
                .agents
                .iter()
                .map(|a| a.content.heap_bytes())
                .sum::<usize>()
            + self.agents.capacity() * std::mem::size_of::<Agent>()
            + self.index.capacity() * 16
    }

    fn agent(&mut self, replica: ReplicaId) -> u32 {
        if let Some(&i) = self.index.get(&replica) {
            return i;
        }
        let i = self.agents.len() as u32;
        self.agents.push(Agent {
            replica,
            content: Content::default(),
        });
        self.index.insert(replica, i);
        i
    }

    fn portable(&self, id: Id) -> Option<CharId> {
        (id.agent != NONE).then(|| CharId {
            replica: self.agents[id.agent as usize].replica,
            seq: id.seq,
        })
    }

    /// The local id of a portable one, if its character is known here.
    fn local(&self, id: Option<CharId>) -> Result<Id, ()> {
        match id {
            None => Ok(Id::NONE),
            Some(c) => match self.index.get(&c.replica) {
                Some(&a) if (c.seq as usize) < self.agents[a as usize].content.len() => Ok(Id {
                    agent: a,
                    seq: c.seq,
                }),
                _ => Err(()),
            },
        }
    }

    // ----- positions ------------------------------------------------------------------

    /// The chunk holding visible position `pos` (the first chunk whose visible range
    /// reaches it), and the visible length before that chunk.
    fn chunk_at(&mut self, pos: usize) -> (usize, usize) {
        let (mut c, mut before) = self.cursor;
        if c >= self.chunks.len() {
            (c, before) = (0, 0);
        }
        while pos < before || (pos == before && c > 0 && pos > 0) {
            c -= 1;
            before -= self.chunks[c].visible;
        }
        while c + 1 < self.chunks.len() && pos > before + self.chunks[c].visible {
            before += self.chunks[c].visible;
            c += 1;
        }
        self.cursor = (c, before);
        (c, before)
    }

    /// Splits runs so that a run boundary falls right after the `pos`-th visible
    /// character, and returns that boundary (before any tombstones that follow it).
    fn boundary_after(&mut self, pos: usize) -> Loc {
        if pos == 0 {
            return Loc { chunk: 0, run: 0 };
        }
        let (c, before) = self.chunk_at(pos);
        let mut seen = before;
        for i in 0..self.chunks[c].runs.len() {
            let run = self.chunks[c].runs[i];
            let v = run.visible() as usize;
            if v > 0 && seen + v >= pos {
                let at = (pos - seen) as u32;
                if at < run.len {
                    self.split_run(Loc { chunk: c, run: i }, at);
                }
                return Loc {
                    chunk: c,
                    run: i + 1,
                };
            }
            seen += v;
        }
        Loc {
            chunk: c,
            run: self.chunks[c].runs.len(),
        }
    }

    /// Splits the run at `loc` after `at` characters (`0 < at < len`): the tail becomes
    /// the next run.
    fn split_run(&mut self, loc: Loc, at: u32) {
        let runs = &mut self.chunks[loc.chunk].runs;
        let tail = runs[loc.run].split(at);
        runs.insert(loc.run + 1, tail);
        self.grew = true;
    }

    /// The run at `loc`, or the next one (across chunks), if any.
    fn run_at(&self, mut loc: Loc) -> Option<(Loc, Run)> {
        while loc.chunk < self.chunks.len() {
            if let Some(run) = self.chunks[loc.chunk].runs.get(loc.run) {
                return Some((loc, *run));
            }
            loc = Loc {
                chunk: loc.chunk + 1,
                run: 0,
            };
        }
        None
    }

    fn previous(&self, loc: Loc) -> Option<Run> {
        if loc.run > 0 {
            return self.chunks[loc.chunk].runs.get(loc.run - 1).copied();
        }
        (0..loc.chunk)
            .rev()
            .find_map(|c| self.chunks[c].runs.last().copied())
    }

    fn next_loc(&self, loc: Loc) -> Loc {
        Loc {
            chunk: loc.chunk,
            run: loc.run + 1,
        }
    }

    /// Splits chunks that splitting runs has filled past [`CHUNK`]. Edits touch the
    /// chunks at the edit cursor, where the last edit left off and the id-lookup hint,
    /// so those are checked after every edit that split a run; a sweep over all chunks
    /// every 256 edits catches the rest (a chunk gains at most a few runs per edit, so
    /// it never grows far past the limit).
    fn rebalance(&mut self) {
        self.unbalanced += 1;
        if !std::mem::take(&mut self.grew) && self.unbalanced < 256 {
            return; // no run was added
        }
        if self.unbalanced >= 256 {
            self.unbalanced = 0;
            let mut c = 0;
            while c < self.chunks.len() {
                if !self.split_chunk(c) {
                    c += 1;
                }
            }
            return;
        }
        let edited = self.edit.map_or(self.cursor.0, |e| e.at.chunk);
        for c in [self.cursor.0, self.cursor.0 + 1, edited, self.hint] {
            while self
                .chunks
                .get(c)
                .is_some_and(|chunk| chunk.runs.len() > CHUNK)
            {
                self.split_chunk(c);
            }
        }
    }

    /// Splits chunk `c` in two if it holds more than [`CHUNK`] runs; whether it did.
    #[inline(never)]
    fn split_chunk(&mut self, c: usize) -> bool {
        if self.chunks[c].runs.len() <= CHUNK {
            return false;
        }
        let tail: Vec<Run> = self.chunks[c].runs.split_off(CHUNK / 2);
        let visible: usize = tail.iter().map(|r| r.visible() as usize).sum();
        self.chunks[c].visible -= visible;
        let mut runs = Vec::with_capacity(CHUNK + 1);
        runs.extend(tail);
        self.chunks.insert(c + 1, Chunk { runs, visible });
        if self.cursor.0 > c {
            self.cursor.0 += 1;
        }
        if self.hint > c {
            self.hint += 1;
        }
        if let Some(e) = &mut self.edit {
            e.at = e.at.after_split(c);
            e.ahead = e.ahead.after_split(c);
        }
        true
    }

    /// Records that chunk `chunk` gained (or lost) `delta` visible characters.
    fn visible_changed(&mut self, chunk: usize, delta: isize) {
        self.chunks[chunk].visible = self.chunks[chunk].visible.wrapping_add_signed(delta);
        self.len = self.len.wrapping_add_signed(delta);
        if chunk < self.cursor.0 {
            self.cursor.1 = self.cursor.1.wrapping_add_signed(delta);
        }
    }

    /// Inserts `run` at `loc`, keeping chunks under [`CHUNK`] runs.
    fn insert_run(&mut self, loc: Loc, run: Run) {
        let loc = if loc.chunk >= self.chunks.len() {
            Loc {
                chunk: self.chunks.len() - 1,
                run: self.chunks.last().map_or(0, |c| c.runs.len()),
            }
        } else {
            loc
        };
        self.chunks[loc.chunk].runs.insert(loc.run, run);
        self.visible_changed(loc.chunk, run.visible() as isize);
        self.split_chunk(loc.chunk);
    }

    /// Finds the run holding `id`, splitting so it starts a run if `start`, or ends one.
    /// The search starts at the chunk of the previous lookup and widens both ways:
    /// operations arriving together are usually about neighbouring text.
    fn locate(&mut self, id: Id, start: bool) -> Option<Loc> {
        let n = self.chunks.len();
        let hint = self.hint.min(n - 1);
        let order = (0..n)
            .flat_map(|d| [hint.checked_add(d), hint.checked_sub(d + 1)])
            .flatten()
            .filter(|&c| c < n);
        let found = order.take(n).find_map(|c| {
            self.chunks[c]
                .runs
                .iter()
                .position(|r| r.contains(id))
                .map(|i| (c, i))
        });
        let (c, i) = found?;
        self.hint = c;
        let loc = Loc { chunk: c, run: i };
        let run = self.chunks[c].runs[i];
        let offset = id.seq - run.seq;
        if start && offset > 0 {
            self.split_run(loc, offset);
            return Some(self.next_loc(loc));
        }
        if !start && offset + 1 < run.len {
            self.split_run(loc, offset + 1);
        }
        Some(loc)
    }

    // ----- local edits ----------------------------------------------------------------

    /// Inserts `text` at character index `pos` (clamped to the length); returns the
    /// operation to send to other replicas.
    pub fn insert(&mut self, pos: usize, text: &str) -> Option<TextOp> {
        let (seq, left, right) = self.insert_local(pos, text)?;
        self.rebalance();
        Some(TextOp::Insert {
            id: CharId {
                replica: self.replica,
                seq,
            },
            origin_left: self.portable(left),
            origin_right: self.portable(right),
            text: text.to_owned(),
        })
    }

    /// Deletes `len` characters from index `pos` (clamped); returns the operation.
    pub fn delete(&mut self, pos: usize, len: usize) -> Option<TextOp> {
        let mut ranges = Vec::new();
        self.delete_local(pos, len, Some(&mut ranges));
        self.rebalance();
        (!ranges.is_empty()).then_some(TextOp::Delete { ranges })
    }

    /// Deletes `del` characters at `pos`, then inserts `text` there, without building
    /// operations: for replicas that sync by state or [`delta`](Self::delta) rather than
    /// by forwarding each operation (the document holds all a peer needs).
    pub fn splice(&mut self, pos: usize, del: usize, text: &str) {
        if del > 0 {
            self.delete_local(pos, del, None);
        }
        self.insert_local(pos, text);
        self.rebalance();
    }

    /// Inserts locally; returns the first new sequence number and the origins.
    fn insert_local(&mut self, pos: usize, text: &str) -> Option<(u32, Id, Id)> {
        let n = text.chars().count() as u32;
        if n == 0 {
            return None;
        }
        let pos = pos.min(self.len);
        let loc = self.boundary_at(pos);
        let left = self.previous(loc).map_or(Id::NONE, |r| r.last());
        let right = self.run_at(loc).map_or(Id::NONE, |(_, r)| Id {
            agent: r.agent,
            seq: r.seq,
        });
        let seq = self.agents[self.me as usize].content.len() as u32;
        self.agents[self.me as usize].content.push_str(text);
        // Typing on: extend the run just before instead of adding one.
        if loc.run > 0 {
            let prev = &mut self.chunks[loc.chunk].runs[loc.run - 1];
            if prev.agent == self.me
                && prev.seq + prev.len == seq
                && !prev.deleted
                && prev.right == right
            {
                prev.len += n;
                self.visible_changed(loc.chunk, n as isize);
                // The tombstones after the boundary are still there.
                let ahead = self.edit.filter(|e| e.at == loc).map_or(loc, |e| e.ahead);
                self.edit = Some(Edit {
                    pos: pos + n as usize,
                    at: loc,
                    ahead,
                });
                return Some((seq, left, right));
            }
        }
        // The new run ends where this edit leaves off (a chunk split moves it there).
        self.edit = Edit::at(
            pos + n as usize,
            Loc {
                chunk: loc.chunk,
                run: loc.run + 1,
            },
        );
        self.insert_run(
            loc,
            Run {
                agent: self.me,
                seq,
                len: n,
                left,
                right,
                deleted: false,
            },
        );
        Some((seq, left, right))
    }

    /// Deletes locally, recording the deleted id ranges in `ranges` if given.
    fn delete_local(
        &mut self,
        pos: usize,
        len: usize,
        mut ranges: Option<&mut Vec<(CharId, u32)>>,
    ) {
        let pos = pos.min(self.len);
        let mut left = len.min(self.len - pos);
        if left == 0 {
            return;
        }
        if let Some(done) = self.delete_backwards(pos, left, ranges.as_deref_mut()) {
            self.edit = done;
            return;
        }
        let boundary = self.boundary_at(pos);
        let mut loc = match self.edit {
            Some(e) if e.pos == pos => e.ahead,
            _ => boundary,
        };
        while left > 0 {
            let Some((at, run)) = self.run_at(loc) else {
                break;
            };
            loc = at;
            if run.deleted {
                loc = self.next_loc(loc);
                continue;
            }
            if run.len as usize > left {
                self.split_run(loc, left as u32);
            }
            let r = &mut self.chunks[loc.chunk].runs[loc.run];
            r.deleted = true;
            let (agent, seq, n) = (r.agent, r.seq, r.len);
            self.visible_changed(loc.chunk, -(n as isize));
            left -= n as usize;
            if let Some(ranges) = ranges.as_deref_mut() {
                ranges.push((
                    CharId {
                        replica: self.agents[agent as usize].replica,
                        seq,
                    },
                    n,
                ));
            }
            loc = self.coalesce(loc);
            loc = self.next_loc(loc);
        }
        // Deleting forwards leaves the runs before the boundary as they were, and only
        // tombstones up to `loc`.
        self.edit = Some(Edit {
            pos,
            at: boundary,
            ahead: loc,
        });
    }

    /// Deletes the `len` characters before where the last edit left off, if they end
    /// one visible run (backspacing); the new edit position (`None` when unknown), or
    /// `None` when this is not that case.
    fn delete_backwards(
        &mut self,
        pos: usize,
        len: usize,
        ranges: Option<&mut Vec<(CharId, u32)>>,
    ) -> Option<Option<Edit>> {
        let loc = self.edit?.at;
        if self.edit?.pos != pos + len || loc.run == 0 {
            return None;
        }
        let before = Loc {
            chunk: loc.chunk,
            run: loc.run - 1,
        };
        let run = *self.chunks[loc.chunk].runs.get(before.run)?;
        let len = u32::try_from(len).ok()?;
        if run.deleted || run.len < len {
            return None;
        }
        let whole = run.len == len;
        let gone = if whole {
            before
        } else {
            self.split_run(before, run.len - len);
            loc
        };
        let deleted = &mut self.chunks[loc.chunk].runs[gone.run];
        deleted.deleted = true;
        let (agent, seq) = (deleted.agent, deleted.seq);
        self.visible_changed(loc.chunk, -(len as isize));
        if let Some(ranges) = ranges {
            let replica = self.agents[agent as usize].replica;
            ranges.push((CharId { replica, seq }, len));
        }
        let gone = self.coalesce(gone);
        if !whole {
            // The head stays visible just before the boundary.
            return Some(Edit::at(pos, loc));
        }
        // The boundary moves behind the nearest visible run, if this chunk has one.
        let before = self.chunks[loc.chunk].runs[..gone.run]
            .iter()
            .rposition(|r| !r.deleted);
        Some(before.and_then(|r| {
            Edit::at(
                pos,
                Loc {
                    chunk: loc.chunk,
                    run: r + 1,
                },
            )
        }))
    }

    /// [`boundary_after`](Self::boundary_after), from where the last edit left off when
    /// this edit continues there.
    fn boundary_at(&mut self, pos: usize) -> Loc {
        match self.edit {
            Some(e) if e.pos == pos => e.at,
            _ => self.boundary_after(pos),
        }
    }

    /// Merges the tombstone at `loc` with a tombstone just before it that it continues
    /// (same replica, next sequence number, same right origin); returns where it is now.
    fn coalesce(&mut self, mut loc: Loc) -> Loc {
        let joins = |a: &Run, b: &Run| {
            a.deleted
                && b.deleted
                && a.agent == b.agent
                && a.seq + a.len == b.seq
                && a.right == b.right
        };
        let runs = &mut self.chunks[loc.chunk].runs;
        if loc.run + 1 < runs.len() && joins(&runs[loc.run], &runs[loc.run + 1]) {
            runs[loc.run].len += runs[loc.run + 1].len;
            runs.remove(loc.run + 1);
        }
        if loc.run > 0 && joins(&runs[loc.run - 1], &runs[loc.run]) {
            runs[loc.run - 1].len += runs[loc.run].len;
            runs.remove(loc.run);
            loc.run -= 1;
        }
        loc
    }

    // ----- remote operations ----------------------------------------------------------

    /// Applies an operation from another replica. Operations may arrive in any order
    /// and more than once: one whose dependencies are missing waits (see
    /// [`pending`](Self::pending)); one already applied changes nothing; one no replica
    /// could have made (an empty range, sequence numbers past `u32::MAX`) is ignored.
    pub fn apply(&mut self, op: TextOp) {
        self.edit = None;
        self.rebalance();
        if !self.try_apply(&op) {
            wait(&mut self.pending, op, &mut self.resync);
            return;
        }
        // Something new may unblock what waits.
        loop {
            let before = self.pending.len();
            let waiting = std::mem::take(&mut self.pending);
            for op in waiting {
                if !self.try_apply(&op) {
                    self.pending.push(op);
                }
            }
            if self.pending.len() == before {
                break;
            }
        }
    }

    /// Applies `op` if its dependencies are here; false if it must wait.
    fn try_apply(&mut self, op: &TextOp) -> bool {
        match op {
            TextOp::Insert {
                id,
                origin_left,
                origin_right,
                text,
            } => self.integrate(*id, *origin_left, *origin_right, text),
            TextOp::Delete { ranges } => {
                let mut targets = Vec::with_capacity(ranges.len());
                for (start, len) in ranges {
                    // An empty range, or one past the last sequence number: nothing
                    // any replica deleted.
                    let Some(last) = len.checked_sub(1).and_then(|l| start.seq.checked_add(l))
                    else {
                        continue;
                    };
                    let Ok(first) = self.local(Some(*start)) else {
                        return false;
                    };
                    if self
                        .local(Some(CharId {
                            replica: start.replica,
                            seq: last,
                        }))
                        .is_err()
                    {
                        return false;
                    }
                    targets.push((first, *len));
                }
                for (first, len) in targets {
                    self.delete_ids(first, len);
                }
                true
            }
        }
    }

    fn delete_ids(&mut self, first: Id, len: u32) {
        let mut seq = first.seq;
        let end = first.seq + len;
        while seq < end {
            let Some(loc) = self.locate(
                Id {
                    agent: first.agent,
                    seq,
                },
                true,
            ) else {
                return;
            };
            let run_len = self.chunks[loc.chunk].runs[loc.run].len;
            let take = run_len.min(end - seq);
            if take < run_len {
                self.split_run(loc, take);
            }
            let r = &mut self.chunks[loc.chunk].runs[loc.run];
            if !r.deleted {
                r.deleted = true;
                let n = r.len;
                self.visible_changed(loc.chunk, -(n as isize));
            }
            seq += take;
        }
    }

    /// Integrates a remote insertion (YATA); false if it must wait for dependencies.
    fn integrate(
        &mut self,
        id: CharId,
        origin_left: Option<CharId>,
        origin_right: Option<CharId>,
        text: &str,
    ) -> bool {
        let n = u32::try_from(text.chars().count()).unwrap_or(u32::MAX);
        let Some(end) = id.seq.checked_add(n).filter(|_| n > 0) else {
            return true; // nothing, or past the last sequence number: no replica made it
        };
        let agent = self.agent(id.replica);
        let known = self.agents[agent as usize].content.len() as u32;
        if end <= known {
            return true; // already applied
        }
        if id.seq > known {
            return false; // an earlier insertion of that replica is missing
        }
        // Partly applied (it reached us cut differently, e.g. as a delta): the rest
        // follows the last character known, each character's left origin being the
        // one before it.
        let (id, origin_left, text) = match (known - id.seq) as usize {
            0 => (id, origin_left, text),
            skip => {
                let at = text.char_indices().nth(skip).map_or(text.len(), |(i, _)| i);
                let last = CharId {
                    replica: id.replica,
                    seq: known - 1,
                };
                (CharId { seq: known, ..id }, Some(last), &text[at..])
            }
        };
        let n = end - id.seq;
        let (Ok(left), Ok(right)) = (self.local(origin_left), self.local(origin_right)) else {
            return false;
        };
        let mut loc = match left.agent {
            NONE => Loc { chunk: 0, run: 0 },
            _ => match self.locate(left, false) {
                Some(l) => self.next_loc(l),
                None => return false,
            },
        };
        if right.agent != NONE && self.locate(right, true).is_none() {
            return false;
        }
        // Left may have moved if splitting `right` shifted runs in its chunk: find it again.
        if left.agent != NONE {
            loc = match self.locate(left, false) {
                Some(l) => self.next_loc(l),
                None => return false,
            };
        }
        let my_replica = id.replica;
        // The YATA scan over the runs between left and right.
        let mut insert_at = loc;
        let mut before_origin: Vec<Run> = Vec::new();
        let mut conflicting: Vec<Run> = Vec::new();
        let mut cursor = loc;
        while let Some((at, o)) = self.run_at(cursor) {
            if right.agent != NONE && o.agent == right.agent && o.seq == right.seq {
                break;
            }
            before_origin.push(o);
            conflicting.push(o);
            let o_replica = self.agents[o.agent as usize].replica;
            let in_set = |set: &[Run], id: Id| set.iter().any(|r| r.contains(id));
            if o.left == left {
                if o_replica < my_replica {
                    insert_at = self.next_loc(at);
                    conflicting.clear();
                } else if o.right == right {
                    break;
                }
            } else if o.left.agent != NONE && in_set(&before_origin, o.left) {
                if !in_set(&conflicting[..conflicting.len() - 1], o.left) {
                    insert_at = self.next_loc(at);
                    conflicting.clear();
                }
            } else {
                break;
            }
            cursor = self.next_loc(at);
        }
        self.agents[agent as usize].content.push_str(text);
        self.insert_run(
            insert_at,
            Run {
                agent,
                seq: id.seq,
                len: n,
                left,
                right,
                deleted: false,
            },
        );
        true
    }

    // ----- sync -----------------------------------------------------------------------

    /// What a replica that has seen `since` is missing: the insertions it lacks (as
    /// operations) and every deletion (deletions are idempotent and compact as ranges).
    pub fn delta(&self, since: &VectorClock) -> Vec<TextOp> {
        let mut inserts: Vec<(u32, TextOp)> = Vec::new();
        let mut deletes = Vec::new();
        for run in self.chunks.iter().flat_map(|c| &c.runs) {
            let agent = &self.agents[run.agent as usize];
            let seen = since.get(agent.replica).min(u64::from(u32::MAX)) as u32;
            if run.seq + run.len > seen {
                let skip = seen.saturating_sub(run.seq);
                let mut part = *run;
                if skip > 0 {
                    part = part.split(skip);
                }
                let text = if run.deleted {
                    "\0".repeat(part.len as usize)
                } else {
                    agent.content.slice(part.seq as usize, part.len as usize)
                };
                inserts.push((
                    part.seq,
                    TextOp::Insert {
                        id: CharId {
                            replica: agent.replica,
                            seq: part.seq,
                        },
                        origin_left: self.portable(part.left),
                        origin_right: self.portable(part.right),
                        text,
                    },
                ));
            }
            if run.deleted {
                deletes.push((
                    CharId {
                        replica: agent.replica,
                        seq: run.seq,
                    },
                    run.len,
                ));
            }
        }
        // Each replica's insertions in sequence order; origins across replicas are
        // resolved by the waiting queue.
        inserts.sort_by_key(|(seq, op)| match op {
            TextOp::Insert { id, .. } => (id.replica, *seq),
            TextOp::Delete { .. } => (ReplicaId(0), *seq),
        });
        let mut ops: Vec<TextOp> = inserts.into_iter().map(|(_, op)| op).collect();
        if !deletes.is_empty() {
            ops.push(TextOp::Delete { ranges: deletes });
        }
        ops
    }

    /// Joins another replica's whole state in.
    pub fn merge(&mut self, other: &TextDoc) {
        for op in other.delta(&self.version()) {
            self.apply(op);
        }
        self.resync = false;
    }
}
