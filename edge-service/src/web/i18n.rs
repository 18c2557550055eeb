//! The pages' two languages: English and 简体中文, every user-visible string looked up in the
//! Fluent files under `edge-service/locales/` (embedded in the binary), and which one a request
//! gets: `?lang=` (which the switch sets, and remembers in the `lang` cookie) > the cookie >
//! the browser's `Accept-Language` > English.

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use std::sync::OnceLock;

/// A language the pages speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lang {
    /// English.
    En,
    /// Simplified Chinese (`zh-CN`).
    ZhCn,
}

impl Lang {
    /// Both, in the order the switch shows them.
    pub const ALL: [Lang; 2] = [Lang::ZhCn, Lang::En];

    /// The BCP 47 tag (`en`, `zh-CN`): `<html lang>`, `?lang=`, the cookie, `kare report --lang`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// Its own name, for the switch (a language is offered in itself).
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::ZhCn => "简体中文",
        }
    }

    /// A tag as the user wrote it: `en`, `en-GB`, `zh`, `zh-CN`, `zh-Hans`, any case. Traditional
    /// Chinese (`zh-TW`, `zh-Hant`) is not offered, so it is not taken for `zh-CN`.
    pub fn parse(tag: &str) -> Option<Lang> {
        let t = tag.trim().to_ascii_lowercase().replace('_', "-");
        let primary = t.split('-').next().unwrap_or("");
        match primary {
            "en" => Some(Lang::En),
            "zh" => {
                let rest: Vec<&str> = t.split('-').skip(1).collect();
                if rest
                    .iter()
                    .any(|s| matches!(*s, "tw" | "hk" | "mo" | "hant"))
                {
                    None
                } else {
                    Some(Lang::ZhCn)
                }
            }
            _ => None,
        }
    }

    /// The browser's preferred language among ours, by `q` weight (RFC 9110 §12.5.4); ties keep
    /// the header's order.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(f32, usize, Lang)> = None;
        for (i, part) in header.split(',').enumerate() {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("").trim();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q.is_nan() || q <= 0.0 {
                continue;
            }
            if let Some(l) = Lang::parse(tag) {
                if best.is_none_or(|(bq, bi, _)| q > bq || (q == bq && i < bi)) {
                    best = Some((q, i, l));
                }
            }
        }
        best.map(|(_, _, l)| l)
    }

    /// The request's language: `?lang=` > the `lang` cookie > `Accept-Language` > English. An
    /// unknown `?lang=` is the caller's 400 ([`Lang::parse`] first); an unknown cookie is ignored.
    pub fn negotiate(query: Option<Lang>, cookie: Option<&str>, accept: Option<&str>) -> Lang {
        query
            .or_else(|| cookie.and_then(Lang::parse))
            .or_else(|| accept.and_then(Lang::from_accept_language))
            .unwrap_or(Lang::En)
    }

    /// The message `id`, with no arguments.
    pub fn t(self, id: &str) -> String {
        self.format(id, None)
    }

    /// The message `id` with named arguments (all given as text: numbers are formatted by the
    /// caller, to the precision the figure deserves).
    pub fn ta(self, id: &str, args: &[(&str, &str)]) -> String {
        let mut a = FluentArgs::new();
        for (k, v) in args {
            a.set(*k, FluentValue::from(*v));
        }
        self.format(id, Some(&a))
    }

    fn format(self, id: &str, args: Option<&FluentArgs>) -> String {
        let bundle = bundle(self);
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            // A missing message shows its id rather than nothing; the tests keep the two files'
            // ids equal and every id the code uses present.
            return id.to_string();
        };
        let mut errors = vec![];
        bundle
            .format_pattern(pattern, args, &mut errors)
            .into_owned()
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// The Fluent sources, per language.
pub(crate) fn sources(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::En => &[
            include_str!("../../locales/en/pages.ftl"),
            include_str!("../../locales/en/report.ftl"),
            include_str!("../../locales/en/commission.ftl"),
        ],
        Lang::ZhCn => &[
            include_str!("../../locales/zh-CN/pages.ftl"),
            include_str!("../../locales/zh-CN/report.ftl"),
            include_str!("../../locales/zh-CN/commission.ftl"),
        ],
    }
}

type Bundle = FluentBundle<FluentResource>;

fn bundle(lang: Lang) -> &'static Bundle {
    static EN: OnceLock<Bundle> = OnceLock::new();
    static ZH: OnceLock<Bundle> = OnceLock::new();
    let cell = match lang {
        Lang::En => &EN,
        Lang::ZhCn => &ZH,
    };
    cell.get_or_init(|| {
        let tag = lang
            .code()
            .parse()
            .unwrap_or_else(|_| unic_langid::LanguageIdentifier::default());
        let mut b = FluentBundle::new_concurrent(vec![tag]);
        // No Unicode isolation marks around arguments: they would end up inside attributes, SVG
        // text and the PDF's text, where they are invisible noise.
        b.set_use_isolating(false);
        for src in sources(lang) {
            // The files are ours and tested to parse; a broken line still leaves the rest.
            let res = FluentResource::try_new(src.to_string()).unwrap_or_else(|(r, _)| r);
            let _ = b.add_resource(res);
        }
        b
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn ids(lang: Lang) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for src in sources(lang) {
            let res = FluentResource::try_new(src.to_string())
                .unwrap_or_else(|(_, e)| panic!("{lang}: the .ftl does not parse: {e:?}"));
            for entry in res.entries() {
                if let fluent_syntax::ast::Entry::Message(m) = entry {
                    out.insert(m.id.name.to_string());
                }
            }
        }
        out
    }

    #[test]
    fn both_languages_have_the_same_messages() {
        let en = ids(Lang::En);
        let zh = ids(Lang::ZhCn);
        assert!(en.len() > 50, "{} messages", en.len());
        let only_en: Vec<_> = en.difference(&zh).collect();
        let only_zh: Vec<_> = zh.difference(&en).collect();
        assert!(
            only_en.is_empty() && only_zh.is_empty(),
            "only in en: {only_en:?}; only in zh-CN: {only_zh:?}"
        );
    }

    /// Every `t("id")` / `ta("id", …)` in the web layer's code names a message that exists.
    #[test]
    fn every_message_the_code_names_exists() {
        let sources = [
            include_str!("report.rs"),
            include_str!("charts.rs"),
            include_str!("pages/mod.rs"),
            include_str!("pages/now.rs"),
            include_str!("pages/events.rs"),
            include_str!("pages/tickets.rs"),
            include_str!("pages/report.rs"),
            include_str!("../commission/host.rs"),
            include_str!("../commission/ports.rs"),
            include_str!("../commission/node.rs"),
            include_str!("../commission/meters.rs"),
            include_str!("../commission/cross.rs"),
            include_str!("../commission/uplinks.rs"),
            include_str!("../commission/page.rs"),
            include_str!("../commission/view.rs"),
            include_str!("../commission/mod.rs"),
            include_str!("../cli/commission.rs"),
        ];
        let en = ids(Lang::En);
        let mut missing = vec![];
        for src in sources {
            for pat in ["t(\"", "ta(\"", "bad_param(\"", "(\"why-"] {
                for (i, _) in src.match_indices(pat) {
                    let rest = &src[i + pat.len()..];
                    let id: String = rest.chars().take_while(|c| *c != '"').collect();
                    let id = if pat == "(\"why-" {
                        format!("why-{id}")
                    } else {
                        id
                    };
                    let looks_like_id = !id.is_empty()
                        && id.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
                        });
                    // Message ids have a dash; parameter names (`"from"`) do not.
                    if looks_like_id
                        && id.contains('-')
                        && !en.contains(&id)
                        && id != "no-such-message"
                    {
                        missing.push(id);
                    }
                }
            }
        }
        missing.sort();
        missing.dedup();
        assert!(
            missing.is_empty(),
            "named in the code but in no .ftl: {missing:?}"
        );
    }

    /// Words looked up by a value (`kind-dip`, `ticket-kind-repair`…) exist for every value kare
    /// writes.
    #[test]
    fn every_kind_state_and_verdict_has_words() {
        use crate::actions::rules::{TicketKind, TicketState};
        let en = ids(Lang::En);
        let mut want: Vec<String> = vec![];
        want.extend(
            crate::web::pages::events::KINDS
                .iter()
                .map(|k| format!("kind-{k}")),
        );
        want.extend(
            TicketKind::ALL
                .iter()
                .map(|k| format!("ticket-kind-{}", k.as_str())),
        );
        for s in [
            TicketState::Open,
            TicketState::Closed,
            TicketState::Cancelled,
        ] {
            want.push(format!("state-{}", s.as_str()));
        }
        for v in ["inside", "below", "above"] {
            want.push(format!("itic-{v}"));
        }
        for v in ["inside", "below"] {
            want.push(format!("f47-{v}"));
        }
        for v in ["momentary", "sustained"] {
            want.push(format!("class-{v}"));
        }
        for v in ["half-cycle", "meter"] {
            want.push(format!("timed-{v}"));
        }
        for v in ["normal", "disturbed", "lost"] {
            want.push(format!("supply-{v}"));
        }
        for p in ["month", "quarter", "year", "custom"] {
            want.push(format!("period-{p}"));
        }
        for kv in [110.0, 10.0, 0.22] {
            let level = crate::report::steady::gbt12325_limits(kv).0;
            want.push(format!("level-{}", level.replace('+', "plus")));
        }
        for t in ["critical", "important", "standard"] {
            want.push(format!("tier-{t}"));
        }
        let missing: Vec<&String> = want.iter().filter(|id| !en.contains(*id)).collect();
        assert!(missing.is_empty(), "no words for {missing:?}");
    }

    #[test]
    fn messages_are_looked_up_with_their_arguments() {
        assert_eq!(Lang::En.t("nav-events"), "Events");
        assert_eq!(Lang::ZhCn.t("nav-events"), "事件");
        assert_eq!(Lang::ZhCn.t("kind-dip"), "电压暂降");
        assert_eq!(
            Lang::En.ta("events-count", &[("count", "3")]),
            "3 events shown"
        );
        assert_eq!(Lang::En.t("no-such-message"), "no-such-message");
    }

    #[test]
    fn the_query_beats_the_cookie_which_beats_the_browser() {
        let zh = Some("zh-CN,zh;q=0.9,en;q=0.8");
        assert_eq!(Lang::negotiate(None, None, zh), Lang::ZhCn);
        assert_eq!(Lang::negotiate(None, Some("en"), zh), Lang::En);
        assert_eq!(
            Lang::negotiate(Some(Lang::ZhCn), Some("en"), None),
            Lang::ZhCn
        );
        assert_eq!(Lang::negotiate(None, Some("klingon"), None), Lang::En);
        assert_eq!(Lang::negotiate(None, None, None), Lang::En);
    }

    #[test]
    fn accept_language_weights_and_unoffered_tags() {
        assert_eq!(
            Lang::from_accept_language("fr-FR, en;q=0.5, zh-Hans;q=0.8"),
            Some(Lang::ZhCn)
        );
        assert_eq!(Lang::from_accept_language("zh-TW, fr"), None);
        assert_eq!(
            Lang::from_accept_language("en;q=0, zh;q=0.1"),
            Some(Lang::ZhCn)
        );
        assert_eq!(Lang::from_accept_language("*"), None);
        assert_eq!(Lang::parse("ZH_cn"), Some(Lang::ZhCn));
        assert_eq!(Lang::parse("de"), None);
    }
}
