//! The link's seed: where it comes from, and the independent random streams
//! derived from it so a run can be replayed.

use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

use super::counters::Direction;
use super::error::LinkError;

/// Environment variable read for the seed when the config does not fix one.
pub const SEED_ENV: &str = "FLOTTA_LINK_SEED";

/// What a random stream is used for; each connection has one of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Whether the connection attempt is refused.
    Attempt = 0,
    /// When the connection is dropped.
    Lifetime = 1,
    /// Jitter of client-to-upstream chunks.
    Up = 2,
    /// Jitter of upstream-to-client chunks.
    Down = 3,
}

/// The configured seed, else `FLOTTA_LINK_SEED`, else a fresh random one.
pub(crate) fn resolve(configured: Option<u64>) -> Result<u64, LinkError> {
    if let Some(seed) = configured {
        return Ok(seed);
    }
    match std::env::var(SEED_ENV) {
        Ok(text) => parse(&text),
        Err(std::env::VarError::NotPresent) => Ok(rand::random()),
        Err(std::env::VarError::NotUnicode(_)) => Err(LinkError::invalid(
            "seed",
            format!("{SEED_ENV} is not UTF-8"),
        )),
    }
}

fn parse(text: &str) -> Result<u64, LinkError> {
    text.trim().parse().map_err(|_| {
        LinkError::invalid(
            "seed",
            format!("{SEED_ENV}={text:?} is not an unsigned 64-bit integer"),
        )
    })
}

/// The generator for one purpose of the `connection`-th accepted attempt:
/// streams do not depend on each other, so jitter drawn in one direction
/// never shifts the drops of another connection.
pub(crate) fn rng(seed: u64, connection: u64, stream: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(connection.wrapping_mul(4).wrapping_add(stream as u64));
    rng
}

/// The generator for one direction of a UDP link. Its streams sit at the top
/// of the range, which TCP connection numbers never reach, so a UDP link draws
/// independently of a TCP link given the same seed.
pub(crate) fn datagram_rng(seed: u64, direction: Direction) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(match direction {
        Direction::Up => u64::MAX - 1,
        Direction::Down => u64::MAX,
    });
    rng
}

#[cfg(test)]
mod tests {
    use rand::RngExt;

    use super::*;

    #[test]
    fn configured_seed_wins() -> Result<(), LinkError> {
        assert_eq!(resolve(Some(42))?, 42);
        Ok(())
    }

    #[test]
    fn env_text_is_parsed_or_rejected() {
        assert_eq!(parse(" 1234\n").ok(), Some(1234));
        assert!(matches!(
            parse("-1"),
            Err(LinkError::Invalid { field: "seed", .. })
        ));
        assert!(parse("0x10").is_err());
    }

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let draw = |seed, connection, stream| rng(seed, connection, stream).random::<u64>();
        assert_eq!(draw(7, 3, Stream::Up), draw(7, 3, Stream::Up));
        assert_ne!(draw(7, 3, Stream::Up), draw(7, 3, Stream::Down));
        assert_ne!(draw(7, 3, Stream::Up), draw(7, 4, Stream::Up));
        assert_ne!(draw(7, 3, Stream::Up), draw(8, 3, Stream::Up));
    }

    #[test]
    fn datagram_streams_are_reproducible_and_distinct() {
        let draw = |seed, direction| datagram_rng(seed, direction).random::<u64>();
        assert_eq!(draw(7, Direction::Up), draw(7, Direction::Up));
        assert_ne!(draw(7, Direction::Up), draw(7, Direction::Down));
        assert_ne!(draw(7, Direction::Up), draw(8, Direction::Up));
        assert_ne!(
            draw(7, Direction::Up),
            rng(7, 0, Stream::Up).random::<u64>()
        );
    }
}
