//! `GovernorConfig`: the governor's keys, the agent's `[governor]` table
//! (one governor per process, kept by every metered carrier), with its
//! environment overrides `<PREFIX>_<KEY>` (`FLOTTA_AGENT_GOVERNOR_FAIR_USE`).
//!
//! Defaults and why:
//! - `duty_cycle = true`: EU868 duty cycles are law (ETSI EN 300 220); the
//!   key only affects EU868 transmissions. Turn it off only where the
//!   modem's own MAC enforces it and a second check is unwanted, or in a
//!   shielded lab.
//! - `fair_use = "ttn"`: The Things Network is where most devices start,
//!   and its fair-use policy is the stricter one; a private network
//!   (ChirpStack, TTI with a contract) sets `"none"`. Being held back too
//!   much shows in `describe`; being banned by a network does not.
//! - `sbd_credits_per_day = 0` (unlimited): credits are money, not law,
//!   and the SBD carrier already rounds frames to 50-byte credits; set a
//!   cap to bound a month's bill.

use serde::{Deserialize, Serialize};

/// Which network fair-use policy to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FairUse {
    /// No policy (a private network server).
    None,
    /// The Things Network: 30 s of uplink airtime and 10 downlinks per
    /// device per rolling 24 h.
    #[default]
    Ttn,
}

impl FairUse {
    fn parse(s: &str) -> Option<FairUse> {
        match s.trim() {
            "none" => Some(Self::None),
            "ttn" => Some(Self::Ttn),
            _ => None,
        }
    }
}

/// The governor's keys (module docs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GovernorConfig {
    /// Keep the EU868 sub-band duty cycles (rolling hour).
    pub duty_cycle: bool,
    /// The network's fair-use policy: `"none"` or `"ttn"`.
    pub fair_use: FairUse,
    /// Iridium credits per rolling 24 h (0: unlimited).
    pub sbd_credits_per_day: u32,
}

impl Default for GovernorConfig {
    fn default() -> Self {
        Self {
            duty_cycle: true,
            fair_use: FairUse::Ttn,
            sbd_credits_per_day: 0,
        }
    }
}

/// A governor key that does not parse or check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct GovernorConfigError {
    /// The key (the environment variable, or the table key).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl GovernorConfigError {
    /// Never: a configuration must be fixed first.
    pub fn is_retriable(&self) -> bool {
        false
    }
}

/// The largest credit cap accepted (a 9603 cannot spend more in a day).
pub const MAX_SBD_CREDITS_PER_DAY: u32 = 100_000;

impl GovernorConfig {
    /// Apply `<prefix>_DUTY_CYCLE` (`true`/`false`), `<prefix>_FAIR_USE`
    /// (`none`/`ttn`) and `<prefix>_SBD_CREDITS_PER_DAY` from `env`, then
    /// [`validate`](Self::validate).
    ///
    /// # Errors
    /// [`GovernorConfigError`] naming the variable.
    pub fn apply_env(
        &mut self,
        prefix: &str,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), GovernorConfigError> {
        let var = |key: &str| format!("{prefix}_{key}");
        let err = |key: String, message: &str| GovernorConfigError {
            key,
            message: message.into(),
        };
        let name = var("DUTY_CYCLE");
        if let Some(v) = env(&name) {
            self.duty_cycle = match v.trim() {
                "true" | "1" | "on" => true,
                "false" | "0" | "off" => false,
                _ => return Err(err(name, "must be true or false")),
            };
        }
        let name = var("FAIR_USE");
        if let Some(v) = env(&name) {
            self.fair_use = FairUse::parse(&v).ok_or_else(|| err(name, "must be none or ttn"))?;
        }
        let name = var("SBD_CREDITS_PER_DAY");
        if let Some(v) = env(&name) {
            self.sbd_credits_per_day = v
                .trim()
                .parse()
                .map_err(|_| err(name, "must be a whole number (0: unlimited)"))?;
        }
        self.validate()
    }

    /// Check the values.
    ///
    /// # Errors
    /// [`GovernorConfigError`] naming the key.
    pub fn validate(&self) -> Result<(), GovernorConfigError> {
        if self.sbd_credits_per_day > MAX_SBD_CREDITS_PER_DAY {
            return Err(GovernorConfigError {
                key: "sbd_credits_per_day".into(),
                message: format!(
                    "{} is more than {MAX_SBD_CREDITS_PER_DAY} (0 means unlimited)",
                    self.sbd_credits_per_day
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Lorawan {
        #[serde(default)]
        governor: GovernorConfig,
    }

    #[test]
    fn defaults_and_toml_as_a_sub_table() {
        let c: Lorawan = toml::from_str("").unwrap();
        assert_eq!(c.governor, GovernorConfig::default());
        assert!(c.governor.duty_cycle);
        assert_eq!(c.governor.fair_use, FairUse::Ttn);
        let c: Lorawan =
            toml::from_str("[governor]\nfair_use = \"none\"\nsbd_credits_per_day = 40\n").unwrap();
        assert_eq!(c.governor.fair_use, FairUse::None);
        assert_eq!(c.governor.sbd_credits_per_day, 40);
        let e = toml::from_str::<Lorawan>("[governor]\nfair_use_s = 3\n")
            .err()
            .unwrap();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e = toml::from_str::<Lorawan>("[governor]\nfair_use = \"tt\"\n")
            .err()
            .unwrap();
        assert!(e.to_string().contains("ttn"), "{e}");
    }

    #[test]
    fn environment_overrides() {
        let env = |k: &str| match k {
            "FLOTTA_AGENT_LORAWAN_FAIR_USE" => Some("none".to_owned()),
            "FLOTTA_AGENT_LORAWAN_DUTY_CYCLE" => Some("off".to_owned()),
            "FLOTTA_AGENT_LORAWAN_SBD_CREDITS_PER_DAY" => Some(" 12 ".to_owned()),
            _ => None,
        };
        let mut c = GovernorConfig::default();
        c.apply_env("FLOTTA_AGENT_LORAWAN", &env).unwrap();
        assert_eq!(
            c,
            GovernorConfig {
                duty_cycle: false,
                fair_use: FairUse::None,
                sbd_credits_per_day: 12
            }
        );
        let bad = |k: &str| (k == "X_FAIR_USE").then(|| "TTN!".to_owned());
        let e = GovernorConfig::default().apply_env("X", &bad).unwrap_err();
        assert_eq!(e.to_string(), "X_FAIR_USE: must be none or ttn");
        assert!(!e.is_retriable());
        let big = |k: &str| (k == "X_SBD_CREDITS_PER_DAY").then(|| "1000000".to_owned());
        let e = GovernorConfig::default().apply_env("X", &big).unwrap_err();
        assert!(e.to_string().starts_with("sbd_credits_per_day: "), "{e}");
    }
}
