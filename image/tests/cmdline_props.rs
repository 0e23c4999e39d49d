//! Properties of the cmdline.txt editor: edits are idempotent, never duplicate a key, and
//! keep every other token in order.
#![allow(missing_docs, clippy::unwrap_used)]

use flotta_image::cmdline::{Cmdline, FIRSTRUN_KEYS, REGDOM_KEY};
use proptest::prelude::*;

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9._,:/-]{1,12}",
        "[a-z0-9._-]{1,8}=[A-Za-z0-9._,:/=-]{0,12}",
        Just("systemd.run=/boot/firstrun.sh".to_string()),
        Just("systemd.unit=rescue.target".to_string()),
        Just("cfg80211.ieee80211_regdom=US".to_string()),
    ]
}

fn ours(t: &str) -> bool {
    let k = t.split_once('=').map_or(t, |(k, _)| k);
    FIRSTRUN_KEYS.contains(&k) || k == REGDOM_KEY
}

proptest! {
    #[test]
    fn add_remove_idempotent_no_duplicates_others_kept(
        tokens in prop::collection::vec(token(), 0..12),
        sep in "[ \t]{1,3}",
        newline in any::<bool>(),
        cc in "[A-Z]{2}",
    ) {
        let text = format!("{}{}", tokens.join(&sep), if newline { "\n" } else { "" });
        let mut once = Cmdline::parse(&text);
        once.add_firstrun("/boot/firmware/firstrun.sh");
        once.set_regdom(&cc);
        let mut twice = Cmdline::parse(&once.render());
        twice.add_firstrun("/boot/firmware/firstrun.sh");
        twice.set_regdom(&cc);
        prop_assert_eq!(once.render(), twice.render());
        for key in FIRSTRUN_KEYS.iter().chain([&REGDOM_KEY]) {
            let n = once.tokens().iter().filter(|t| t.split_once('=').map_or(t.as_str(), |(k, _)| k) == *key).count();
            prop_assert_eq!(n, 1, "{} in {:?}", key, once.render());
        }
        let others: Vec<&String> = tokens.iter().filter(|t| !ours(t)).collect();
        let kept: Vec<&String> = once.tokens().iter().filter(|t| !ours(t)).collect();
        prop_assert_eq!(&kept, &others);
        prop_assert_eq!(once.render().ends_with('\n'), newline || tokens.is_empty());
        prop_assert_eq!(once.render().lines().count(), usize::from(!once.tokens().is_empty()));
        // The hook stays last, after the country, as Raspberry Pi Imager writes it.
        prop_assert!(once.tokens().last().unwrap().starts_with("systemd.unit="));
        let mut removed = once.clone();
        removed.remove_firstrun();
        removed.remove_key(REGDOM_KEY);
        let rest: Vec<&String> = removed.tokens().iter().collect();
        prop_assert_eq!(rest, others);
    }
}
