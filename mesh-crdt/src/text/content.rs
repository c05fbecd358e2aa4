//! Inserted characters, per replica, in the order it inserted them.

/// A replica's inserted text, indexed by sequence number (one per character). ASCII is
/// kept as bytes (a quarter of the memory); the first non-ASCII character widens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Content {
    Ascii(Vec<u8>),
    Chars(Vec<char>),
}

impl Default for Content {
    fn default() -> Self {
        Self::Ascii(Vec::new())
    }
}

impl Content {
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Ascii(b) => b.len(),
            Self::Chars(c) => c.len(),
        }
    }

    pub(crate) fn push_str(&mut self, s: &str) {
        match self {
            Self::Ascii(b) if s.is_ascii() => b.extend_from_slice(s.as_bytes()),
            Self::Ascii(b) => {
                let mut chars: Vec<char> = b.iter().map(|&x| x as char).collect();
                chars.extend(s.chars());
                *self = Self::Chars(chars);
            }
            Self::Chars(c) => c.extend(s.chars()),
        }
    }

    /// `len` placeholders, to be overwritten with [`write_at`](Self::write_at): bytes
    /// if all that will be written is ASCII.
    pub(crate) fn placeholders(len: usize, ascii: bool) -> Self {
        if ascii {
            Self::Ascii(vec![0; len])
        } else {
            Self::Chars(vec!['\0'; len])
        }
    }

    /// Overwrites the characters from `start` with `s` (which must fit, and be ASCII
    /// if this is).
    pub(crate) fn write_at(&mut self, start: usize, s: &str) {
        match self {
            Self::Ascii(b) => b[start..start + s.len()].copy_from_slice(s.as_bytes()),
            Self::Chars(c) => {
                for (slot, ch) in c[start..].iter_mut().zip(s.chars()) {
                    *slot = ch;
                }
            }
        }
    }

    pub(crate) fn append_to(&self, start: usize, len: usize, out: &mut String) {
        match self {
            // Only ASCII bytes are ever stored here.
            Self::Ascii(b) => out.extend(b[start..start + len].iter().map(|&x| x as char)),
            Self::Chars(c) => out.extend(&c[start..start + len]),
        }
    }

    pub(crate) fn slice(&self, start: usize, len: usize) -> String {
        let mut s = String::with_capacity(len);
        self.append_to(start, len, &mut s);
        s
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Self::Ascii(b) => b.capacity(),
            Self::Chars(c) => c.capacity() * 4,
        }
    }
}
