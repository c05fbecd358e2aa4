//! [`DocLimits`]: how large and how fast shared documents may grow.

/// Limits on shared documents. Every one has a default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DocLimits {
    /// The largest update an agent may send, in bytes. Default 1 MiB.
    pub max_update_bytes: usize,
    /// The most characters a text document holds (counting what inserts add). Default
    /// 4,000,000.
    pub max_text_chars: usize,
    /// The most paths a state document holds. Default 10,000.
    pub max_state_paths: usize,
    /// Updates per second a document accepts, from everyone together. Default 500.
    pub updates_per_second: f64,
    /// The largest burst of updates above that rate. Default 1,000.
    pub burst: f64,
    /// After how many stored edits they are folded into the snapshot. Default 256.
    pub compact_every: usize,
    /// How many relayed updates a slow subscriber may fall behind before it is sent
    /// the document again. Default 1,024.
    pub relay_buffer: usize,
    /// The most documents one hub connection has open. Default 64.
    pub max_open_per_connection: usize,
}

impl Default for DocLimits {
    fn default() -> Self {
        Self {
            max_update_bytes: 1 << 20,
            max_text_chars: 4_000_000,
            max_state_paths: 10_000,
            updates_per_second: 500.0,
            burst: 1_000.0,
            compact_every: 256,
            relay_buffer: 1_024,
            max_open_per_connection: 64,
        }
    }
}
