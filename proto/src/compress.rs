//! Body compression for the batch route: HTTP's `Content-Encoding: deflate`
//! (zlib, RFC 1950), from the pure-Rust `miniz_oxide`.
//!
//! A window's heartbeats repeat themselves (same version, slowly moving
//! counters, timestamps a period apart), so a batch shrinks several times;
//! on a metered link that is most of the bill. Decompression of untrusted
//! bytes is bounded: the output never exceeds the caller's limit.

/// The `Content-Encoding` (and `Accept-Encoding`) token.
pub const DEFLATE: &str = "deflate";

/// Bodies shorter than this are sent as they are: zlib's 6 bytes of framing
/// and a code table cost more than they save.
pub const MIN_COMPRESS_BYTES: usize = 96;

/// Compression level: 6 is zlib's default; higher levels gain next to
/// nothing on a few KiB and cost a slow CPU.
const LEVEL: u8 = 6;

/// Why a compressed body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// It inflates to more than the limit.
    #[error("compressed body inflates to more than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// It is not a valid zlib stream.
    #[error("compressed body is not valid zlib/deflate data ({0})")]
    Corrupt(String),
}

/// zlib-compress `bytes`.
pub fn deflate(bytes: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(bytes, LEVEL)
}

/// `bytes` compressed when that makes them smaller: `(body, compressed?)`.
pub fn deflate_if_smaller(bytes: Vec<u8>) -> (Vec<u8>, bool) {
    if bytes.len() < MIN_COMPRESS_BYTES {
        return (bytes, false);
    }
    let packed = deflate(&bytes);
    if packed.len() < bytes.len() {
        (packed, true)
    } else {
        (bytes, false)
    }
}

/// Inflate an untrusted zlib body to at most `limit` bytes.
pub fn inflate(bytes: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    use miniz_oxide::inflate::TINFLStatus;
    miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(bytes, limit).map_err(|e| {
        match e.status {
            TINFLStatus::HasMoreOutput => InflateError::TooLarge { limit },
            other => InflateError::Corrupt(format!("{other:?}")),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_bodies_stay_plain_repetitive_ones_shrink() {
        let (b, packed) = deflate_if_smaller(vec![1, 2, 3]);
        assert_eq!((b, packed), (vec![1, 2, 3], false));
        let repetitive: Vec<u8> = b"heartbeat 0.1.0 up ".repeat(60);
        let (b, packed) = deflate_if_smaller(repetitive.clone());
        assert!(packed && b.len() * 5 < repetitive.len(), "{}", b.len());
        assert_eq!(inflate(&b, repetitive.len()).unwrap(), repetitive);
    }

    #[test]
    fn bombs_and_garbage_are_refused() {
        let bomb = deflate(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 20_000);
        assert_eq!(
            inflate(&bomb, 1 << 20),
            Err(InflateError::TooLarge { limit: 1 << 20 })
        );
        assert!(matches!(
            inflate(b"definitely not zlib", 1024),
            Err(InflateError::Corrupt(_))
        ));
        assert!(matches!(inflate(&[], 1024), Err(InflateError::Corrupt(_))));
    }

    proptest! {
        #[test]
        fn roundtrips_within_the_limit(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
            let (body, packed) = deflate_if_smaller(bytes.clone());
            let back = if packed { inflate(&body, bytes.len()).unwrap() } else { body };
            prop_assert_eq!(back, bytes);
        }

        #[test]
        fn inflate_never_panics_nor_exceeds_the_limit(bytes in prop::collection::vec(any::<u8>(), 0..512), limit in 0usize..4096) {
            if let Ok(out) = inflate(&bytes, limit) {
                prop_assert!(out.len() <= limit);
            }
        }
    }
}
