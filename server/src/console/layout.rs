//! The page shell every console page shares (navigation, who is signed
//! in, the stylesheet and the small script), and value formatting.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::admin_auth::{AdminRole, Principal, Via};

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// The fleet table (and device pages).
    Fleet,
    /// Pending enrolments.
    Approvals,
    /// EdgeWorkloads and where they run.
    Workloads,
    /// The audit log.
    Audit,
    /// None (sign-in).
    None,
}

/// A whole page.
pub fn page(title: &str, viewer: Option<&Principal>, nav: Nav, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · flotta" }
                link rel="stylesheet" href="/ui/static/console.css";
                script src="/ui/static/console.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/ui/" { "flotta" }
                    @if nav != Nav::None {
                        nav {
                            a href="/ui/" class=[(nav == Nav::Fleet).then_some("on")] { "Fleet" }
                            a href="/ui/approvals" class=[(nav == Nav::Approvals).then_some("on")] { "Approvals" }
                            a href="/ui/workloads" class=[(nav == Nav::Workloads).then_some("on")] { "Workloads" }
                            @if viewer.is_some_and(may_change) {
                                a href="/ui/audit" class=[(nav == Nav::Audit).then_some("on")] { "Audit" }
                            }
                        }
                    }
                    @if let Some(p) = viewer {
                        div.who {
                            span #who { (p.name) } " "
                            span.role #role { (p.role.as_str()) }
                            @if p.via != Via::Local {
                                form method="post" action="/ui/logout" {
                                    button type="submit" { "Sign out" }
                                }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// Whether the viewer may change state (shows the forms that do).
pub fn may_change(viewer: &Principal) -> bool {
    viewer.role >= AdminRole::Admin
}

/// `2026-12-03 10:04:05Z`.
pub fn time(ms: u64) -> String {
    let t = crate::controller::rfc3339(ms);
    t.replacen('T', " ", 1)
}

/// `3m ago`, `in 4d`: the distance from `now_ms`.
pub fn age(ms: u64, now_ms: u64) -> String {
    let (d, ago) = if now_ms >= ms {
        (now_ms - ms, true)
    } else {
        (ms - now_ms, false)
    };
    let s = d / 1000;
    let text = match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    };
    if ago {
        format!("{text} ago")
    } else {
        format!("in {text}")
    }
}

/// A `<time>` element: readable age, exact time in the title.
pub fn when(ms: Option<u64>, now_ms: u64) -> Markup {
    match ms {
        Some(ms) => {
            html! { time datetime=(crate::controller::rfc3339(ms)) title=(time(ms)) { (age(ms, now_ms)) } }
        }
        None => html! { span.muted { "never" } },
    }
}

/// A small coloured word (presence, phase, level).
pub fn badge(word: &str) -> Markup {
    html! { span class={ "badge b-" (word) } { (word) } }
}

/// Text that is already safe HTML (SVG made by `charts`).
pub fn raw(s: String) -> Markup {
    PreEscaped(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(1_000, 61_000), "1m ago");
        assert_eq!(age(0, 3 * 86_400_000 + 5), "3d ago");
        assert_eq!(age(86_400_000 * 10, 0), "in 10d");
        assert_eq!(age(5_000, 5_000), "0s ago");
    }

    #[test]
    fn names_are_escaped() {
        let p = Principal {
            name: "<script>".into(),
            role: AdminRole::ReadOnly,
            via: Via::Token,
        };
        let html = page("t", Some(&p), Nav::Fleet, html! {}).into_string();
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>alert"));
        assert!(html.contains("read-only"));
    }
}
