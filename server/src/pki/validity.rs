//! Validity windows of issued certificates.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

use super::PkiError;

/// How far `not_before` is set back from "now", so that a verifier whose
/// clock runs a little behind ours still accepts a fresh certificate.
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(3600);

/// The period during which a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// First valid instant.
    pub not_before: SystemTime,
    /// Last valid instant.
    pub not_after: SystemTime,
}

impl Validity {
    /// Valid from a little before `now` (see [`CLOCK_SKEW_ALLOWANCE`]) until `now + lifetime`.
    pub fn starting_at(now: SystemTime, lifetime: Duration) -> Result<Self, PkiError> {
        let not_after = now.checked_add(lifetime).ok_or_else(|| {
            PkiError::Validity(format!(
                "a lifetime of {} seconds is too long",
                lifetime.as_secs()
            ))
        })?;
        Ok(Self {
            not_before: now.checked_sub(CLOCK_SKEW_ALLOWANCE).unwrap_or(now),
            not_after,
        })
    }

    /// Explicit bounds (used by tests to mint already-expired certificates).
    pub fn between(not_before: SystemTime, not_after: SystemTime) -> Self {
        Self {
            not_before,
            not_after,
        }
    }

    pub(crate) fn to_rcgen(self) -> Result<(OffsetDateTime, OffsetDateTime), PkiError> {
        if self.not_after <= self.not_before {
            return Err(PkiError::Validity(
                "not_after must be later than not_before".into(),
            ));
        }
        // X.509 times (and the `time` crate without large dates) stop at 9999-12-31.
        let last = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
        let conv = |t: SystemTime| {
            if t < UNIX_EPOCH || t > last {
                let secs = match t.duration_since(UNIX_EPOCH) {
                    Ok(d) => d.as_secs().to_string(),
                    Err(e) => format!("-{}", e.duration().as_secs()),
                };
                Err(PkiError::Validity(format!(
                    "{secs} seconds since 1970 is outside 1970-01-01..9999-12-31"
                )))
            } else {
                Ok(OffsetDateTime::from(t))
            }
        };
        Ok((conv(self.not_before)?, conv(self.not_after)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_empty_and_absurd_windows() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert!(Validity::between(now, now).to_rcgen().is_err());
        assert!(Validity::starting_at(now, Duration::from_secs(u64::MAX)).is_err());
        let far = Validity::starting_at(now, Duration::from_secs(10_000 * 365 * 86_400));
        assert!(far.is_ok_and(|v| v.to_rcgen().is_err()));
        let ok = Validity::starting_at(now, Duration::from_secs(60)).and_then(|v| v.to_rcgen());
        assert!(ok.is_ok());
    }
}
