//! `[delivery]`: the endpoints tickets go to and how hard to try.
//!
//! ```toml
//! [delivery]
//! max_age_s = 86400         # a message still failing after this long is a dead letter
//! backoff_base_s = 5        # first retry after ~5 s, then 10, 20, 40 ... (± jitter)
//! backoff_max_s = 600       # never more than 10 min between attempts
//! jitter = 0.2              # ± 20 %, so that many queued messages do not retry in step
//!
//! [[delivery.endpoint]]
//! kind = "webhook"
//! name = "repair-desk"
//! url = "https://desk.utility.example/api/kare/tickets"
//! secret = "shared secret for X-Kare-Signature"
//! # timeout_s = 10, headers = { "Authorization" = "Bearer ..." }
//!
//! [[delivery.endpoint]]
//! kind = "email"
//! name = "desk-mail"
//! smtp_host = "mail.utility.example"
//! # smtp_port = 587, tls = "starttls" | "tls" | "none", username = "...", password = "..."
//! from = "kare at St Mary's <kare-stmary@utility.example>"
//! to = ["repair-desk@utility.example"]
//!
//! [[delivery.endpoint]]
//! kind = "sms"
//! name = "duty-sms"
//! url = "https://sms-gw.utility.example/send?to={to}&text={text}&key=..."
//! to = ["+8613800000000"]
//! # method = "GET" | "POST", body = "{\"to\":\"{to}\",\"text\":\"{text}\"}",
//! # content_type = "application/json", max_chars = 140, to_separator = ","
//! ```
//!
//! Which endpoints a kind of ticket goes to is the rules' business: they pass the resolved
//! list with each save ([`crate::store::TicketWrite::deliver_to`]).

pub use crate::config::ConfigProblem;
use crate::store::Channel;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// `[delivery]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// A message still failing this long after it was queued is given up (dead letter), s.
    /// Long by default: an outage may take the site's network uplink down with the supply,
    /// and the ticket still matters when it comes back.
    pub max_age_s: f64,
    /// Delay before the first retry, s; doubled on each further failure.
    pub backoff_base_s: f64,
    /// Longest delay between attempts, s.
    pub backoff_max_s: f64,
    /// Random spread of each delay, as a fraction (0.2: ± 20 %).
    pub jitter: f64,
    /// Messages in flight at once to one endpoint.
    pub concurrency: usize,
    /// Messages in flight at once in total.
    pub max_in_flight: usize,
    /// At shutdown, how long sends in flight may finish before they are abandoned (they stay
    /// queued and are sent again after the restart, with the same idempotency key), s.
    pub shutdown_grace_s: f64,
    /// The endpoints.
    pub endpoint: Vec<EndpointConfig>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            max_age_s: 86_400.0,
            backoff_base_s: 5.0,
            backoff_max_s: 600.0,
            jitter: 0.2,
            concurrency: 4,
            max_in_flight: 64,
            shutdown_grace_s: 5.0,
            endpoint: Vec::new(),
        }
    }
}

/// One `[[delivery.endpoint]]`, by `kind`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EndpointConfig {
    /// HTTP POST of the ticket JSON, signed.
    Webhook(WebhookConfig),
    /// E-mail over SMTP.
    Email(EmailConfig),
    /// SMS through an HTTP gateway.
    Sms(SmsConfig),
}

/// `kind = "webhook"`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Endpoint name (what the rules refer to).
    pub name: String,
    /// `http://` or `https://` URL the JSON is POSTed to. Redirects are not followed.
    pub url: String,
    /// Shared secret for `X-Kare-Signature` (docs/webhook.md); or `secret_file`.
    #[serde(default)]
    pub secret: String,
    /// A file holding the secret instead (0600; the Debian package writes
    /// `/etc/kare/secrets/webhook.secret`); read by `Config::load`.
    #[serde(default)]
    pub secret_file: Option<std::path::PathBuf>,
    /// Whole-request timeout, s.
    #[serde(default = "d10")]
    pub timeout_s: f64,
    /// Extra headers (e.g. `Authorization`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which is required (port 587 by default).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465 by default).
    Tls,
    /// No encryption (port 25 by default): only for a relay on a trusted network, or tests.
    None,
}

/// `kind = "email"`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Endpoint name.
    pub name: String,
    /// SMTP server.
    pub smtp_host: String,
    /// Port; default from `tls` (587, 465 or 25).
    #[serde(default)]
    pub smtp_port: Option<u16>,
    /// Transport security.
    #[serde(default)]
    pub tls: SmtpTls,
    /// SMTP AUTH user, if the server wants one.
    #[serde(default)]
    pub username: Option<String>,
    /// SMTP AUTH password.
    #[serde(default)]
    pub password: Option<String>,
    /// Sender, `Name <address>` or `address`.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Domain of the Message-ID; default: the sender's domain.
    #[serde(default)]
    pub message_id_domain: Option<String>,
    /// Timeout of each SMTP command, s.
    #[serde(default = "d30")]
    pub timeout_s: f64,
}

/// HTTP method of an SMS gateway.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum HttpMethod {
    /// GET: everything in the URL.
    #[default]
    #[serde(rename = "GET", alias = "get")]
    Get,
    /// POST: `body` is sent.
    #[serde(rename = "POST", alias = "post")]
    Post,
}

/// `kind = "sms"`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// Endpoint name.
    pub name: String,
    /// URL template: `{to}` and `{text}` are replaced, percent-encoded.
    pub url: String,
    /// Method.
    #[serde(default)]
    pub method: HttpMethod,
    /// Body template for POST: `{to}` and `{text}` are replaced, escaped for `content_type`
    /// (JSON string escapes for a JSON type, percent-encoding for a form, as is otherwise).
    #[serde(default)]
    pub body: Option<String>,
    /// Content type of the body; default `application/x-www-form-urlencoded`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Numbers, as the gateway wants them; one request carries them all, joined.
    pub to: Vec<String>,
    /// What joins several numbers in `{to}`.
    #[serde(default = "comma")]
    pub to_separator: String,
    /// Longest text, in characters.
    #[serde(default = "d140")]
    pub max_chars: usize,
    /// Extra headers (gateway credentials).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Whole-request timeout, s.
    #[serde(default = "d10")]
    pub timeout_s: f64,
}

fn d10() -> f64 {
    10.0
}
fn d30() -> f64 {
    30.0
}
fn d140() -> usize {
    140
}
fn comma() -> String {
    ",".into()
}

impl EndpointConfig {
    /// The endpoint's name.
    pub fn name(&self) -> &str {
        match self {
            EndpointConfig::Webhook(c) => &c.name,
            EndpointConfig::Email(c) => &c.name,
            EndpointConfig::Sms(c) => &c.name,
        }
    }

    /// The channel it delivers on.
    pub fn channel(&self) -> Channel {
        match self {
            EndpointConfig::Webhook(_) => Channel::Webhook,
            EndpointConfig::Email(_) => Channel::Email,
            EndpointConfig::Sms(_) => Channel::Sms,
        }
    }
}

/// A number of seconds within `min..=max`: beyond a day or so a retry or a timeout means
/// "never", and `Duration::from_secs_f64` panics on what does not fit.
fn secs(key: &str, v: f64, min: f64, max: f64, example: &str) -> Result<(), ConfigProblem> {
    crate::config::check::within(key, v, min, max, "seconds", example)
}

impl DeliveryConfig {
    /// [`Self::max_age_s`].
    pub fn max_age(&self) -> Duration {
        Duration::from_secs_f64(self.max_age_s.max(0.0))
    }

    /// The endpoint with this name.
    pub fn endpoint(&self, name: &str) -> Option<&EndpointConfig> {
        self.endpoint.iter().find(|e| e.name() == name)
    }

    /// Checks every value; the first problem found names its key, relative to `[delivery]`.
    /// Ranges (documented in `systemd/kare.toml`): max_age_s 1 to 2 592 000 (30 days);
    /// backoff_base_s 0.001 to 3600; backoff_max_s from backoff_base_s to 86 400;
    /// shutdown_grace_s 0 to 300; jitter 0 to 1; concurrency 1 to 64; max_in_flight 1 to
    /// 10 000; endpoint names without control characters, unique; timeouts 0.001 to 600 s;
    /// max_chars 20 to 10 000.
    pub fn validate(&self) -> Result<(), ConfigProblem> {
        use crate::config::check::within;
        let bad = |key: String, problem: &str| {
            Err(ConfigProblem {
                key,
                problem: problem.into(),
            })
        };
        secs("max_age_s", self.max_age_s, 1.0, 2_592_000.0, "86400")?;
        secs("backoff_base_s", self.backoff_base_s, 0.001, 3600.0, "5")?;
        secs(
            "backoff_max_s",
            self.backoff_max_s,
            self.backoff_base_s,
            86_400.0,
            "600",
        )?;
        secs("shutdown_grace_s", self.shutdown_grace_s, 0.0, 300.0, "5")?;
        within("jitter", self.jitter, 0.0, 1.0, "(a fraction)", "0.2")?;
        within(
            "concurrency",
            self.concurrency as f64,
            1.0,
            64.0,
            "messages",
            "4",
        )?;
        within(
            "max_in_flight",
            self.max_in_flight as f64,
            1.0,
            10_000.0,
            "messages",
            "64",
        )?;
        let mut names = HashSet::new();
        for (i, e) in self.endpoint.iter().enumerate() {
            let k = |f: &str| format!("endpoint[{i}].{f}");
            let name = e.name();
            crate::config::check::name(&k("name"), name)?;
            if !names.insert(name) {
                return bad(
                    k("name"),
                    "is used by another endpoint: names must be unique",
                );
            }
            match e {
                EndpointConfig::Webhook(c) => {
                    check_url(&c.url).map_err(|p| ConfigProblem {
                        key: k("url"),
                        problem: p,
                    })?;
                    if c.secret_file.is_some() {
                        if !c.secret.is_empty() {
                            return bad(
                                k("secret"),
                                "is given with secret_file: keep one (secret_file, for the secret the package writes)",
                            );
                        }
                    } else if c.secret.len() < 16 {
                        return bad(
                            k("secret"),
                            "must be at least 16 characters: receivers verify X-Kare-Signature with it",
                        );
                    }
                    secs(&k("timeout_s"), c.timeout_s, 0.001, 600.0, "10")?;
                    check_headers(&c.headers).map_err(|p| ConfigProblem {
                        key: k("headers"),
                        problem: p,
                    })?;
                }
                EndpointConfig::Email(c) => {
                    if c.smtp_host.trim().is_empty() {
                        return bad(k("smtp_host"), "must name the SMTP server");
                    }
                    if c.from.parse::<lettre::message::Mailbox>().is_err() {
                        return bad(
                            k("from"),
                            "must be an address, `Name <user@domain>` or `user@domain`",
                        );
                    }
                    if c.to.is_empty() {
                        return bad(k("to"), "must list at least one recipient");
                    }
                    for (j, t) in c.to.iter().enumerate() {
                        if t.parse::<lettre::message::Mailbox>().is_err() {
                            return bad(
                                format!("endpoint[{i}].to[{j}]"),
                                "is not an e-mail address",
                            );
                        }
                    }
                    if c.username.is_some() != c.password.is_some() {
                        return bad(k("password"), "username and password go together");
                    }
                    secs(&k("timeout_s"), c.timeout_s, 0.001, 600.0, "10")?;
                }
                EndpointConfig::Sms(c) => {
                    let body_has_text = c.body.as_deref().is_some_and(|b| b.contains("{text}"));
                    if !c.url.contains("{text}") && !body_has_text {
                        return bad(k("url"), "the url or the body must contain {text}");
                    }
                    if c.method == HttpMethod::Get && c.body.is_some() {
                        return bad(k("body"), "a body needs method = \"POST\"");
                    }
                    check_url(&c.url.replace("{to}", "1").replace("{text}", "x")).map_err(|p| {
                        ConfigProblem {
                            key: k("url"),
                            problem: p,
                        }
                    })?;
                    if c.to.is_empty() {
                        return bad(k("to"), "must list at least one number");
                    }
                    within(
                        &k("max_chars"),
                        c.max_chars as f64,
                        20.0,
                        10_000.0,
                        "characters",
                        "140",
                    )?;
                    secs(&k("timeout_s"), c.timeout_s, 0.001, 600.0, "10")?;
                    check_headers(&c.headers).map_err(|p| ConfigProblem {
                        key: k("headers"),
                        problem: p,
                    })?;
                }
            }
        }
        Ok(())
    }
}

fn check_url(u: &str) -> Result<(), String> {
    match reqwest::Url::parse(u) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        Ok(_) => Err("must be an http:// or https:// URL with a host".into()),
        Err(e) => Err(format!("is not a URL ({e})")),
    }
}

fn check_headers(h: &BTreeMap<String, String>) -> Result<(), String> {
    for (k, v) in h {
        reqwest::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("`{k}` is not a header name"))?;
        reqwest::header::HeaderValue::from_str(v)
            .map_err(|_| format!("the value of `{k}` is not a valid header value"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        delivery: DeliveryConfig,
    }

    fn parse(text: &str) -> Result<DeliveryConfig, String> {
        toml::from_str::<File>(text)
            .map(|f| f.delivery)
            .map_err(|e| e.to_string())
    }

    /// The example at the top of this module, so that it stays true.
    fn example() -> String {
        include_str!("config.rs")
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.strip_prefix("//! ").unwrap_or("").to_string() + "\n")
            .collect()
    }

    #[test]
    fn delivery_config_example_parses_and_validates() {
        let c = parse(&example()).unwrap();
        c.validate().unwrap();
        assert_eq!(c.endpoint.len(), 3);
        assert_eq!(c.max_age(), Duration::from_secs(86_400));
        let kinds: Vec<Channel> = c.endpoint.iter().map(EndpointConfig::channel).collect();
        assert_eq!(kinds, [Channel::Webhook, Channel::Email, Channel::Sms]);
        match c.endpoint("desk-mail").unwrap() {
            EndpointConfig::Email(e) => {
                assert_eq!(e.tls, SmtpTls::Starttls);
                assert_eq!(e.timeout_s, 30.0);
            }
            other => panic!("{other:?}"),
        }
        match c.endpoint("duty-sms").unwrap() {
            EndpointConfig::Sms(s) => {
                assert_eq!((s.method, s.max_chars), (HttpMethod::Get, 140));
            }
            other => panic!("{other:?}"),
        }
        // Everything has a default.
        assert_eq!(parse("[delivery]\n").unwrap(), DeliveryConfig::default());
    }

    #[test]
    fn delivery_config_problems_name_their_key() {
        let base = example();
        let unknown = base.replace("secret = ", "secrett = ");
        assert!(parse(&unknown).unwrap_err().contains("secrett"));
        let kind = base.replace("kind = \"sms\"", "kind = \"pager\"");
        assert!(parse(&kind).unwrap_err().contains("pager"));

        let problem = |text: String| parse(&text).unwrap().validate().unwrap_err();
        let p = problem(base.replace("name = \"desk-mail\"", "name = \"repair-desk\""));
        assert_eq!(p.key, "endpoint[1].name");
        let p = problem(base.replace("\"shared secret for X-Kare-Signature\"", "\"short\""));
        assert_eq!(p.key, "endpoint[0].secret");
        let p = problem(base.replace("&text={text}", ""));
        assert_eq!(p.key, "endpoint[2].url");
        let p = problem(base.replace("[\"repair-desk@utility.example\"]", "[\"not an address\"]"));
        assert_eq!(p.key, "endpoint[1].to[0]");
        let p = problem(base.replace("jitter = 0.2", "jitter = 2"));
        assert_eq!(p.key, "jitter");
        assert!(p.to_string().contains("fraction"));
    }
}
