//! The offline default: hashed word, word-pair and character n-gram features.

use crate::{BoxFuture, EmbedError, Embedder, Embeddings, ModelInfo, Role};

/// An embedder that needs no network and no model: each text becomes a bag of hashed
/// features — lower-cased words (common English stop words dropped), adjacent word
/// pairs, and character 3- to 5-grams of each word (so "route" and "routing" share
/// features) — folded into `dimensions` buckets with a hash-chosen sign (so collisions
/// cancel out on average instead of adding up), weighted sublinearly
/// (`sign · (1 + ln |x|)`), and L2-normalized.
///
/// Deterministic (same text, same vector, on every machine), and useful for retrieval
/// when queries share words or word stems with documents; it knows no synonyms. Its
/// quality on the labeled set shipped with the tests is reported in the crate README.
#[derive(Debug, Clone)]
pub struct HashEmbedder {
    info: ModelInfo,
}

impl Default for HashEmbedder {
    fn default() -> Self {
        Self::new(384)
    }
}

/// Feature weights: whole words count most, pairs add order, n-grams add stems.
const WORD: f32 = 1.0;
const PAIR: f32 = 0.5;
const GRAM: f32 = 0.35;

/// Words too common to say anything about a text.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been",
    "before", "but", "by", "can", "could", "did", "do", "does", "each", "for", "from", "had",
    "has", "have", "he", "her", "his", "how", "i", "if", "in", "into", "is", "it", "its", "just",
    "more", "most", "my", "no", "not", "of", "on", "one", "or", "other", "our", "out", "over",
    "she", "so", "some", "such", "than", "that", "the", "their", "them", "then", "there", "these",
    "they", "this", "to", "up", "us", "was", "we", "were", "what", "when", "where", "which",
    "while", "who", "why", "will", "with", "would", "you", "your",
];

fn is_stop_word(word: &str) -> bool {
    word.len() <= 5 && STOP_WORDS.binary_search(&word).is_ok()
}

/// FNV-1a, 64-bit: fast, stable across platforms and releases.
fn fnv(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64 ^ seed;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl HashEmbedder {
    /// An embedder producing vectors of `dimensions` (at least 16).
    pub fn new(dimensions: usize) -> Self {
        let dimensions = dimensions.max(16);
        Self {
            info: ModelInfo {
                id: format!("mesh-hash-v1-{dimensions}"),
                dimensions,
                max_input_tokens: 8192,
                max_batch: 1024,
                price_per_million_tokens: 0.0,
            },
        }
    }

    /// Embeds one text (synchronously; it is pure computation).
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let dims = self.info.dimensions;
        let mut counts = vec![0f32; dims];
        let mut add = |h: u64, weight: f32| {
            let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
            counts[((h >> 1) % dims as u64) as usize] += sign * weight;
        };
        let lower = text.to_lowercase();
        let mut previous: Option<u64> = None;
        for word in lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty() && !is_stop_word(w))
        {
            let w = fnv(1, word.as_bytes());
            add(w, WORD);
            if let Some(p) = previous {
                add(p.rotate_left(17) ^ w, PAIR);
            }
            previous = Some(w);
            let bytes = word.as_bytes();
            if word.is_ascii() && bytes.len() > 3 {
                for n in 3..=5.min(bytes.len()) {
                    for gram in bytes.windows(n) {
                        add(fnv(n as u64 + 10, gram), GRAM);
                    }
                }
            }
        }
        // Sublinear weighting, then unit length.
        let mut norm = 0f32;
        for c in &mut counts {
            let magnitude = c.abs();
            // 1 + ln tf for repeated features; lighter ones keep their weight.
            if magnitude > 1.0 {
                *c = c.signum() * (1.0 + magnitude.ln());
            }
            norm += *c * *c;
        }
        if norm > 0.0 {
            let inv = norm.sqrt().recip();
            counts.iter_mut().for_each(|c| *c *= inv);
        }
        counts
    }

    /// A rough token count: about four bytes a token.
    fn tokens(text: &str) -> u64 {
        text.len().div_ceil(4) as u64
    }
}

impl Embedder for HashEmbedder {
    fn model(&self) -> &ModelInfo {
        &self.info
    }

    fn embed<'a>(
        &'a self,
        texts: &'a [String],
        _role: Role,
    ) -> BoxFuture<'a, Result<Embeddings, EmbedError>> {
        Box::pin(async move {
            if texts.len() > self.info.max_batch {
                return Err(EmbedError::BatchTooLarge {
                    count: texts.len(),
                    max: self.info.max_batch,
                });
            }
            let vectors = texts.iter().map(|t| self.embed_one(t)).collect();
            let tokens = texts.iter().map(|t| Self::tokens(t)).sum();
            Ok(Embeddings::new(self.info.id.clone(), vectors, tokens))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn the_stop_word_list_is_sorted() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn is_deterministic_and_normalized() {
        let e = HashEmbedder::new(256);
        let a = e.embed_one("Agents route tasks through the mesh");
        assert_eq!(a, e.embed_one("Agents route tasks through the mesh"));
        assert!((cos(&a, &a) - 1.0).abs() < 1e-5);
        assert_eq!(a.len(), 256);
        assert!(e.embed_one("").iter().all(|x| *x == 0.0));
    }

    #[test]
    fn related_texts_are_closer_than_unrelated_ones() {
        let e = HashEmbedder::default();
        let q = e.embed_one("how are tasks routed to agents");
        let near = e.embed_one("The router picks an agent for each task by capability and load.");
        let far = e.embed_one("Bake the bread at 220 degrees for forty minutes.");
        assert!(
            cos(&q, &near) > cos(&q, &far) + 0.1,
            "{} vs {}",
            cos(&q, &near),
            cos(&q, &far)
        );
    }
}
