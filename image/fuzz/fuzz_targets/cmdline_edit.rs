//! Fuzz the cmdline.txt editor on arbitrary text: no panic, adding the firstrun hook and a
//! country twice gives the same line as once, each of our keys appears exactly once, and
//! removing them gives back every other token in order.
#![no_main]

use flotta_image::cmdline::{Cmdline, FIRSTRUN_KEYS, REGDOM_KEY};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let ours = |t: &str| {
        let k = t.split_once('=').map_or(t, |(k, _)| k);
        FIRSTRUN_KEYS.contains(&k) || k == REGDOM_KEY
    };
    let others: Vec<String> = text.split_whitespace().filter(|t| !ours(t)).map(str::to_owned).collect();
    let mut once = Cmdline::parse(text);
    once.add_firstrun("/boot/firmware/firstrun.sh");
    once.set_regdom("DE");
    let mut twice = Cmdline::parse(&once.render());
    twice.add_firstrun("/boot/firmware/firstrun.sh");
    twice.set_regdom("DE");
    assert_eq!(once.render(), twice.render());
    for k in FIRSTRUN_KEYS.iter().chain([&REGDOM_KEY]) {
        assert_eq!(once.tokens().iter().filter(|t| t.split('=').next() == Some(k)).count(), 1);
    }
    once.remove_firstrun();
    once.remove_key(REGDOM_KEY);
    assert_eq!(once.tokens(), &others[..]);
});
