//! gzip (RFC 1952) members with reusable deflate state and bounded inflation.
//!
//! flate2's `GzEncoder` allocates a fresh deflate state (hundreds of KiB) per stream and
//! its decoder grows the output freely. Writing the 10-byte header and 8-byte trailer
//! here lets one raw deflate/inflate state serve every frame of a codec (reset, not
//! reallocated), and lets inflation write only into capacity we granted, so a gzip bomb
//! stops at the limit instead of allocating its full size.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::Error;

const MAGIC: [u8; 2] = [0x1f, 0x8b];
const METHOD_DEFLATE: u8 = 8;
/// Header: magic, method, no flags, mtime 0, no extra flags, OS 255 (unknown).
const HEADER: [u8; 10] = [0x1f, 0x8b, METHOD_DEFLATE, 0, 0, 0, 0, 0, 0, 0xff];
const TRAILER_LEN: usize = 8;

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const FRESERVED: u8 = 0xe0;

/// Pooled compression state: created on first use, reset between frames.
pub(crate) struct Gzip {
    level: Compression,
    deflate: Option<Compress>,
    inflate: Option<Decompress>,
}

impl Gzip {
    pub(crate) fn new(level: u32) -> Self {
        Self {
            level: Compression::new(level),
            deflate: None,
            inflate: None,
        }
    }

    /// Appends a gzip member of `input` to `out` if it comes out smaller than `input`;
    /// returns whether it did. On `false`, `out` is as it was.
    pub(crate) fn compress_if_smaller(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        let start = out.len();
        if input.len() <= HEADER.len() + TRAILER_LEN {
            return false;
        }
        // Output as large as the input is useless: grant just that much room, and give
        // up as soon as deflate needs more.
        let deflate_end = start + input.len() - TRAILER_LEN;
        out.reserve_exact(input.len());
        out.extend_from_slice(&HEADER);
        let level = self.level;
        let deflate = self
            .deflate
            .get_or_insert_with(|| Compress::new(level, false));
        deflate.reset();
        if !compress_bounded(deflate, input, out, deflate_end) {
            out.truncate(start);
            return false;
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(input);
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        out.extend_from_slice(&(input.len() as u32).to_le_bytes());
        true
    }

    /// Inflates the gzip member `input`, refusing (without allocating past it) any
    /// output larger than `max` bytes.
    pub(crate) fn decompress(&mut self, input: &[u8], max: usize) -> Result<Vec<u8>, Error> {
        let body = skip_header(input)?;
        let inflate = self.inflate.get_or_insert_with(|| Decompress::new(false));
        inflate.reset(false);
        // Start near the likely size; grow by doubling, never past max + 1.
        let ceiling = max.saturating_add(1);
        let mut out: Vec<u8> =
            Vec::with_capacity(ceiling.min(input.len().saturating_mul(4).max(256)));
        loop {
            let consumed = inflate.total_in() as usize;
            let before_out = out.len();
            let status = inflate
                .decompress_vec(&body[consumed..], &mut out, FlushDecompress::None)
                .map_err(|_| Error::BadGzip {
                    reason: "corrupt deflate stream",
                })?;
            if out.len() > max {
                return Err(Error::DecompressedTooLarge { max });
            }
            match status {
                Status::StreamEnd => break,
                Status::Ok | Status::BufError => {
                    if out.len() == out.capacity() {
                        if out.capacity() >= ceiling {
                            return Err(Error::DecompressedTooLarge { max });
                        }
                        let target = out.capacity().saturating_mul(2).min(ceiling);
                        out.reserve_exact(target - out.len());
                    } else if inflate.total_in() as usize == consumed && out.len() == before_out {
                        return Err(Error::BadGzip {
                            reason: "truncated deflate stream",
                        });
                    }
                }
            }
        }
        let trailer = &body[inflate.total_in() as usize..];
        if trailer.len() < TRAILER_LEN {
            return Err(Error::BadGzip {
                reason: "missing trailer",
            });
        }
        let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&out);
        if hasher.finalize() != crc {
            return Err(Error::BadGzip {
                reason: "CRC-32 mismatch",
            });
        }
        if size != out.len() as u32 {
            return Err(Error::BadGzip {
                reason: "size mismatch in trailer",
            });
        }
        Ok(out)
    }
}

/// Deflates all of `input` into `out` (whose spare capacity it writes into, never
/// growing it); false when the output would reach `end` (compression does not pay).
fn compress_bounded(deflate: &mut Compress, input: &[u8], out: &mut Vec<u8>, end: usize) -> bool {
    loop {
        let consumed = deflate.total_in() as usize;
        let written = out.len();
        match deflate.compress_vec(&input[consumed..], out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => return out.len() < end,
            Ok(Status::Ok | Status::BufError) => {
                let stalled = deflate.total_in() as usize == consumed && out.len() == written;
                if out.len() >= end || out.len() == out.capacity() || stalled {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
}

/// Checks the gzip header and returns what follows it.
fn skip_header(input: &[u8]) -> Result<&[u8], Error> {
    let short = Error::BadGzip {
        reason: "truncated header",
    };
    if input.len() < HEADER.len() {
        return Err(short);
    }
    if input[..2] != MAGIC {
        return Err(Error::BadGzip {
            reason: "not a gzip member (bad magic)",
        });
    }
    if input[2] != METHOD_DEFLATE {
        return Err(Error::BadGzip {
            reason: "compression method is not deflate",
        });
    }
    let flg = input[3];
    if flg & FRESERVED != 0 {
        return Err(Error::BadGzip {
            reason: "reserved header flags set",
        });
    }
    let mut rest = &input[HEADER.len()..];
    if flg & FEXTRA != 0 {
        if rest.len() < 2 {
            return Err(short);
        }
        let xlen = u16::from_le_bytes([rest[0], rest[1]]) as usize;
        rest = rest.get(2 + xlen..).ok_or(Error::BadGzip {
            reason: "truncated header",
        })?;
    }
    for flag in [FNAME, FCOMMENT] {
        if flg & flag != 0 {
            let end = rest.iter().position(|&b| b == 0).ok_or(Error::BadGzip {
                reason: "truncated header",
            })?;
            rest = &rest[end + 1..];
        }
    }
    if flg & FHCRC != 0 {
        rest = rest.get(2..).ok_or(Error::BadGzip {
            reason: "truncated header",
        })?;
    }
    Ok(rest)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| b"mesh agents route tasks "[i % 24])
            .collect()
    }

    #[test]
    fn round_trips_and_is_readable_by_flate2() {
        let mut gz = Gzip::new(1);
        let input = sample(10_000);
        let mut out = Vec::new();
        assert!(gz.compress_if_smaller(&input, &mut out));
        let mut standard = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut standard)
            .unwrap();
        assert_eq!(standard, input);
        assert_eq!(gz.decompress(&out, 1 << 20).unwrap(), input);
    }

    #[test]
    fn reads_members_written_by_flate2_with_optional_header_fields() {
        let input = sample(5_000);
        let mut enc = flate2::GzBuilder::new()
            .filename("x.json")
            .comment("hi")
            .extra(vec![1, 2, 3])
            .write(Vec::new(), flate2::Compression::best());
        enc.write_all(&input).unwrap();
        let bytes = enc.finish().unwrap();
        assert_eq!(Gzip::new(1).decompress(&bytes, 1 << 20).unwrap(), input);
    }

    #[test]
    fn incompressible_input_is_left_alone() {
        let mut gz = Gzip::new(1);
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let noise: Vec<u8> = (0..2000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let mut out = vec![9, 9];
        assert!(!gz.compress_if_smaller(&noise, &mut out));
        assert_eq!(out, vec![9, 9]);
    }

    #[test]
    fn state_is_reused_across_members() {
        let mut gz = Gzip::new(6);
        for len in [2_000, 50_000, 3_000] {
            let input = sample(len);
            let mut out = Vec::new();
            assert!(gz.compress_if_smaller(&input, &mut out));
            assert_eq!(gz.decompress(&out, len).unwrap(), input);
        }
    }

    #[test]
    fn stops_at_the_limit() {
        let mut gz = Gzip::new(1);
        let input = vec![0u8; 100_000];
        let mut out = Vec::new();
        assert!(gz.compress_if_smaller(&input, &mut out));
        assert!(matches!(
            gz.decompress(&out, 99_999),
            Err(Error::DecompressedTooLarge { max: 99_999 })
        ));
        assert_eq!(gz.decompress(&out, 100_000).unwrap().len(), 100_000);
    }

    #[test]
    fn corrupt_members_are_typed_errors() {
        let mut gz = Gzip::new(1);
        let input = sample(4_000);
        let mut good = Vec::new();
        assert!(gz.compress_if_smaller(&input, &mut good));
        let mut bad_crc = good.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        for bad in [
            &good[..5],
            &good[..good.len() - 3],
            &bad_crc[..],
            b"\x1f\x8b\x07rest",
            &good[..20],
        ] {
            assert!(
                matches!(gz.decompress(bad, 1 << 20), Err(Error::BadGzip { .. })),
                "{bad:?}"
            );
        }
    }
}
