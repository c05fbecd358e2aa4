//! The text document's binary encoding (see `docs/crdt-encoding.md`).
//!
//! Version 2 (written) stores the runs column by column — agents, sequence numbers as
//! the step from the run before, lengths, and origins as a kind (most name the
//! neighbouring run) with the few explicit ones apart — then the visible text, and
//! compresses the whole with DEFLATE: similar small values side by side compress well.
//! Version 1 (a run at a time, uncompressed) is still read.

use std::collections::HashMap;

use super::{Agent, CHUNK, Chunk, Content, Id, MAX_CHARS, NONE, Run, TextDoc};
use crate::ReplicaId;
use crate::encoding::{DecodeError, Reader, TEXT_VERSION, Writer, tag};

/// The most bytes a version-2 body may inflate to (256 MiB: the text of
/// [`MAX_CHARS`] ASCII characters with room for their runs).
const MAX_INFLATED: usize = 1 << 28;

/// DEFLATE's largest expansion: a body claiming more per compressed byte is refused
/// before anything is allocated.
const MAX_RATIO: usize = 1032;

/// miniz's compression level (0–10). On automerge-paper level 2 is the knee: level 1
/// writes 14 % more bytes, level 6 (miniz's default) 7 % fewer in 2.3× the time.
const LEVEL: u8 = 2;

/// Origin kinds: no origin.
const NO_ORIGIN: u64 = 0;
/// Left origin: the last character of the run before (in document order). Right
/// origin: the first character of the run after.
const NEIGHBOUR: u64 = 1;
/// Left origin: the previous character of the same replica (typing on, with
/// something inserted in between since). Right origin: the run before's right origin.
const ALONG: u64 = 2;
/// Explicit: `EXPLICIT + agent`, the sequence number in the explicit column.
const EXPLICIT: u64 = 3;

impl TextDoc {
    /// The compact binary encoding of the whole state (see `docs/crdt-encoding.md`).
    /// Deleted characters keep their ids and origins but not their content.
    pub fn encode(&self) -> Vec<u8> {
        let runs: Vec<&Run> = self.chunks.iter().flat_map(|c| &c.runs).collect();
        let mut columns = Columns::default();
        let mut visible = String::with_capacity(self.len);
        let mut prev: Option<&Run> = None;
        for (i, r) in runs.iter().enumerate() {
            columns.agent.u64(u64::from(r.agent));
            let expected = prev.map_or(0, |p| i64::from(p.seq) + i64::from(p.len));
            columns.seq.i64(i64::from(r.seq) - expected);
            columns
                .len
                .u64(u64::from(r.len) << 1 | u64::from(r.deleted));
            let left = if r.left.agent == NONE {
                NO_ORIGIN
            } else if prev.is_some_and(|p| p.last() == r.left) {
                NEIGHBOUR
            } else if r.left.agent == r.agent && r.left.seq + 1 == r.seq {
                ALONG
            } else {
                columns
                    .explicit
                    .i64(i64::from(r.left.seq) - i64::from(r.seq));
                EXPLICIT + u64::from(r.left.agent)
            };
            columns.left.u64(left);
            let next = runs.get(i + 1);
            let right = if r.right.agent == NONE {
                NO_ORIGIN
            } else if next.is_some_and(|n| n.agent == r.right.agent && n.seq == r.right.seq) {
                NEIGHBOUR
            } else if prev.is_some_and(|p| p.right == r.right) {
                ALONG
            } else {
                columns
                    .explicit
                    .i64(i64::from(r.right.seq) - i64::from(r.seq));
                EXPLICIT + u64::from(r.right.agent)
            };
            columns.right.u64(right);
            if !r.deleted {
                self.agents[r.agent as usize].content.append_to(
                    r.seq as usize,
                    r.len as usize,
                    &mut visible,
                );
            }
            prev = Some(r);
        }
        let mut raw = Writer::bare();
        raw.u64(self.agents.len() as u64);
        for a in &self.agents {
            raw.u64(a.replica.0);
            raw.u64(a.content.len() as u64);
        }
        raw.u64(runs.len() as u64);
        for column in [
            columns.agent,
            columns.seq,
            columns.len,
            columns.left,
            columns.right,
            columns.explicit,
        ] {
            raw.bytes(&column.finish());
        }
        raw.bytes(visible.as_bytes());
        let raw = raw.finish();
        let mut w = Writer::versioned(tag::TEXT, TEXT_VERSION);
        w.u64(raw.len() as u64);
        w.buf
            .extend_from_slice(&miniz_oxide::deflate::compress_to_vec(&raw, LEVEL));
        w.finish()
    }

    /// Reads [`encode`](Self::encode)'s output (either version), as a replica with id
    /// `replica`.
    pub fn decode(bytes: &[u8], replica: ReplicaId) -> Result<Self, DecodeError> {
        let (mut r, version) = Reader::versioned(bytes, tag::TEXT, TEXT_VERSION)?;
        if version == 1 {
            return decode_v1(r, replica);
        }
        let raw_len = r.usize(MAX_INFLATED)?;
        let packed = r.rest();
        if raw_len > packed.len().saturating_mul(MAX_RATIO) {
            return Err(DecodeError::Invalid("inflated length"));
        }
        let raw = miniz_oxide::inflate::decompress_to_vec_with_limit(packed, raw_len)
            .map_err(|_| DecodeError::Invalid("compressed body"))?;
        if raw.len() != raw_len {
            return Err(DecodeError::Invalid("inflated length"));
        }
        let mut r = Reader::bare(&raw);
        let replicas = read_replicas(&mut r)?;
        let n_runs = r.usize(raw.len())?;
        let agent_column = r.bytes()?;
        // Each run takes at least a byte of each column: the count cannot make this
        // allocate more than the body justifies.
        if n_runs > agent_column.len() {
            return Err(DecodeError::Invalid("run count"));
        }
        let mut agents = Reader::bare(agent_column);
        let mut seqs = Reader::bare(r.bytes()?);
        let mut lens = Reader::bare(r.bytes()?);
        let mut lefts = Reader::bare(r.bytes()?);
        let mut rights = Reader::bare(r.bytes()?);
        let mut explicit = Reader::bare(r.bytes()?);
        let visible = r.str()?;
        r.end()?;
        // Ids first: a right origin may name the run after.
        let mut runs: Vec<Run> = Vec::with_capacity(n_runs);
        let mut expected = 0i64;
        for _ in 0..n_runs {
            let agent = agents.u32()?;
            let seq = u32::try_from(expected + seqs.i64()?)
                .map_err(|_| DecodeError::Invalid("run out of range"))?;
            let (len, deleted) = read_len(&mut lens)?;
            let run = Run {
                agent,
                seq,
                len,
                left: Id::NONE,
                right: Id::NONE,
                deleted,
            };
            check_run(&run, &replicas)?;
            expected = i64::from(seq) + i64::from(len);
            runs.push(run);
        }
        let origin = |id: Option<Id>| id.ok_or(DecodeError::Invalid("origin"));
        for i in 0..runs.len() {
            let run = runs[i];
            let prev = i.checked_sub(1).map(|p| runs[p]);
            runs[i].left = match lefts.u64()? {
                NO_ORIGIN => Id::NONE,
                NEIGHBOUR => origin(prev.map(|p| p.last()))?,
                ALONG => origin(run.seq.checked_sub(1).map(|seq| Id {
                    agent: run.agent,
                    seq,
                }))?,
                kind => read_explicit(kind, &mut explicit, run.seq)?,
            };
            runs[i].right = match rights.u64()? {
                NO_ORIGIN => Id::NONE,
                NEIGHBOUR => origin(runs.get(i + 1).map(|n| Id {
                    agent: n.agent,
                    seq: n.seq,
                }))?,
                ALONG => origin(prev.map(|p| p.right))?,
                kind => read_explicit(kind, &mut explicit, run.seq)?,
            };
        }
        for column in [agents, seqs, lens, lefts, rights, explicit] {
            column.end()?;
        }
        TextDoc::from_parts(replica, replicas, runs, visible)
    }

    /// A document from decoded runs in document order and the visible text, checked:
    /// every origin names a character the document has, each replica's characters are
    /// covered once, and the text fits the visible runs.
    fn from_parts(
        replica: ReplicaId,
        replicas: Vec<(ReplicaId, usize)>,
        runs: Vec<Run>,
        visible: &str,
    ) -> Result<Self, DecodeError> {
        let n_agents = replicas.len();
        if runs.iter().any(|r| {
            [r.left, r.right].iter().any(|o| {
                o.agent != NONE
                    && (o.agent as usize >= n_agents
                        || o.seq as usize >= replicas[o.agent as usize].1)
            })
        }) {
            return Err(DecodeError::Invalid("origin out of range"));
        }
        // Each visible run's text, by character offset in the visible text.
        let starts: Vec<usize> = if visible.is_ascii() {
            Vec::new()
        } else {
            let ends = std::iter::once(visible.len());
            visible.char_indices().map(|(i, _)| i).chain(ends).collect()
        };
        let chars = if starts.is_empty() {
            visible.len()
        } else {
            starts.len() - 1
        };
        let byte = |c: usize| if starts.is_empty() { c } else { starts[c] };
        let mut texts: Vec<&str> = Vec::with_capacity(runs.len());
        let mut offset = 0usize;
        let mut ascii = vec![true; n_agents];
        for run in runs.iter().filter(|r| !r.deleted) {
            let end = offset + run.len as usize;
            if end > chars {
                return Err(DecodeError::Invalid("text length"));
            }
            let text = &visible[byte(offset)..byte(end)];
            ascii[run.agent as usize] &= text.is_ascii();
            texts.push(text);
            offset = end;
        }
        if offset != chars {
            return Err(DecodeError::Invalid("text length"));
        }
        // Every character of each replica is covered by exactly one run.
        let mut covered = Coverage::new(&replicas);
        for run in &runs {
            if !covered.mark(run) {
                return Err(DecodeError::Invalid("runs overlap"));
            }
        }
        if !covered.complete() {
            return Err(DecodeError::Invalid("content has gaps"));
        }
        // Each replica's content: placeholders where deleted, the text where visible.
        let mut agents: Vec<Agent> = replicas
            .iter()
            .zip(&ascii)
            .map(|(&(replica, len), &ascii)| Agent {
                replica,
                content: Content::placeholders(len, ascii),
            })
            .collect();
        for (run, text) in runs.iter().filter(|r| !r.deleted).zip(texts) {
            agents[run.agent as usize]
                .content
                .write_at(run.seq as usize, text);
        }
        let index: HashMap<ReplicaId, u32> = agents
            .iter()
            .enumerate()
            .map(|(i, a)| (a.replica, i as u32))
            .collect();
        if index.len() != agents.len() {
            return Err(DecodeError::Invalid("a replica listed twice"));
        }
        let mut chunks: Vec<Chunk> = runs
            .chunks(CHUNK / 2)
            .map(|part| Chunk {
                runs: part.to_vec(),
                visible: part.iter().map(|r| r.visible() as usize).sum(),
            })
            .collect();
        if chunks.is_empty() {
            chunks.push(Chunk::default());
        }
        Ok(Self::assemble(replica, agents, index, chunks))
    }
}

/// Which characters of each replica the decoded runs cover.
struct Coverage {
    /// One bit per character, each replica's from its offset.
    bits: Vec<u64>,
    offsets: Vec<usize>,
    missing: usize,
}

impl Coverage {
    fn new(replicas: &[(ReplicaId, usize)]) -> Self {
        let mut offsets = Vec::with_capacity(replicas.len());
        let mut total = 0;
        for &(_, len) in replicas {
            offsets.push(total);
            total += len;
        }
        Self {
            bits: vec![0; total.div_ceil(64)],
            offsets,
            missing: total,
        }
    }

    /// Marks `run`'s characters; false if one was marked already.
    fn mark(&mut self, run: &Run) -> bool {
        let mut i = self.offsets[run.agent as usize] + run.seq as usize;
        let end = i + run.len as usize;
        while i < end {
            let (word, low) = (i / 64, i % 64);
            let n = (64 - low).min(end - i);
            let mask = (u64::MAX >> (64 - n)) << low;
            if self.bits[word] & mask != 0 {
                return false;
            }
            self.bits[word] |= mask;
            i += n;
        }
        self.missing -= run.len as usize;
        true
    }

    fn complete(&self) -> bool {
        self.missing == 0
    }
}

/// The per-run columns of version 2.
#[derive(Default)]
struct Columns {
    agent: Writer,
    seq: Writer,
    len: Writer,
    left: Writer,
    right: Writer,
    explicit: Writer,
}

/// The replicas and how many characters each inserted (at most [`MAX_CHARS`] in all).
fn read_replicas(r: &mut Reader<'_>) -> Result<Vec<(ReplicaId, usize)>, DecodeError> {
    let n = r.usize(r.remaining())?;
    let mut replicas = Vec::with_capacity(n);
    let mut total = 0usize;
    for _ in 0..n {
        let replica = ReplicaId(r.u64()?);
        let len = r.usize(MAX_CHARS)?;
        total += len;
        if total > MAX_CHARS {
            return Err(DecodeError::Invalid(
                "document larger than the decoding limit",
            ));
        }
        replicas.push((replica, len));
    }
    Ok(replicas)
}

/// A run's `len << 1 | deleted`.
fn read_len(r: &mut Reader<'_>) -> Result<(u32, bool), DecodeError> {
    let packed = r.u64()?;
    let len = u32::try_from(packed >> 1).map_err(|_| DecodeError::Invalid("run length"))?;
    Ok((len, packed & 1 == 1))
}

/// A run must name characters its replica inserted.
fn check_run(run: &Run, replicas: &[(ReplicaId, usize)]) -> Result<(), DecodeError> {
    match replicas.get(run.agent as usize) {
        Some(&(_, inserted)) if run.len > 0 && run.seq as usize + run.len as usize <= inserted => {
            Ok(())
        }
        _ => Err(DecodeError::Invalid("run out of range")),
    }
}

/// An explicit origin: `kind` is [`EXPLICIT`] + agent, its sequence number the next
/// value of `column`, relative to the run's.
fn read_explicit(kind: u64, column: &mut Reader<'_>, seq: u32) -> Result<Id, DecodeError> {
    let agent = kind
        .checked_sub(EXPLICIT)
        .and_then(|a| u32::try_from(a).ok())
        .filter(|&a| a != NONE)
        .ok_or(DecodeError::Invalid("origin"))?;
    let seq = u32::try_from(i64::from(seq) + column.i64()?)
        .map_err(|_| DecodeError::Invalid("origin"))?;
    Ok(Id { agent, seq })
}

/// Version 1: a run at a time — agent, sequence number, `len << 1 | deleted`, then
/// each origin as 0 (none), 1 (left only: the replica's previous character) or
/// `agent + 2` and the sequence number — then the visible text; uncompressed.
fn decode_v1(mut r: Reader<'_>, replica: ReplicaId) -> Result<TextDoc, DecodeError> {
    let replicas = read_replicas(&mut r)?;
    let n_runs = r.usize(r.remaining())?;
    let mut runs = Vec::with_capacity(n_runs);
    for _ in 0..n_runs {
        let agent = r.u32()?;
        let seq = r.u32()?;
        let (len, deleted) = read_len(&mut r)?;
        let mut origins = [Id::NONE; 2];
        for (i, o) in origins.iter_mut().enumerate() {
            match r.u64()? {
                0 => {}
                1 if i == 0 => {
                    *o = Id {
                        agent,
                        seq: seq.checked_sub(1).ok_or(DecodeError::Invalid("origin"))?,
                    }
                }
                a => {
                    *o = Id {
                        agent: a
                            .checked_sub(2)
                            .and_then(|a| u32::try_from(a).ok())
                            .ok_or(DecodeError::Invalid("origin"))?,
                        seq: r.u32()?,
                    }
                }
            }
        }
        let run = Run {
            agent,
            seq,
            len,
            left: origins[0],
            right: origins[1],
            deleted,
        };
        check_run(&run, &replicas)?;
        runs.push(run);
    }
    let visible = r.str()?;
    r.end()?;
    TextDoc::from_parts(replica, replicas, runs, visible)
}
