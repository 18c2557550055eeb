//! `[influx]`: where and how the sink writes.
//!
//! ```toml
//! [influx]
//! api = "v1"                        # or "v2"
//! url = "http://influx.example:8086"
//! database = "kare"                 # v1
//! # retention_policy = "autogen"    # v1, optional
//! # username = "kare"               # v1, optional (basic auth)
//! # password = "secret"
//! # token = "..."                   # v2 (and v1 on a 2.x/3.x v1-compatibility endpoint)
//! # org = "utility"                 # v2
//! # bucket = "kare"                 # v2
//! batch_size = 5000
//! flush_interval_s = 5
//! gzip = true
//! timeout_s = 10
//! backlog_max_mb = 256
//! health_interval_s = 30
//!
//! [influx.tags]                     # added to every point; default: from [site]
//! site = "SITE-1"
//! customer = "CUST-0001"
//! tier = "critical"
//! ```

use super::error::InfluxError;
use crate::actions::site::Site;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Which write API the server speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// InfluxDB 1.x `POST /write?db=&rp=&precision=ns` (also 2.x/3.x's v1-compatibility API).
    #[default]
    V1,
    /// InfluxDB 2.x/3.x `POST /api/v2/write?org=&bucket=&precision=ns`, through `influxdb2`.
    V2,
}

/// The site tags added to every point. Bounded by construction: one value each per appliance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteTags {
    /// Site id.
    #[serde(default)]
    pub site: String,
    /// Customer id.
    #[serde(default)]
    pub customer: String,
    /// Service tier (`critical`, `important`, `standard`).
    #[serde(default)]
    pub tier: String,
}

/// `[influx]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxConfig {
    /// Write API.
    #[serde(default)]
    pub api: Api,
    /// Server URL, e.g. `http://influx.example:8086`.
    pub url: String,
    /// v1: database.
    #[serde(default)]
    pub database: String,
    /// v1: retention policy (the database's default when absent).
    #[serde(default)]
    pub retention_policy: Option<String>,
    /// v1: user name (basic auth).
    #[serde(default)]
    pub username: Option<String>,
    /// v1: password.
    #[serde(default)]
    pub password: Option<String>,
    /// v2: API token (v1: sent as `Authorization: Token` when set, for 2.x/3.x v1 endpoints).
    #[serde(default)]
    pub token: Option<String>,
    /// v2: organisation.
    #[serde(default)]
    pub org: String,
    /// v2: bucket.
    #[serde(default)]
    pub bucket: String,
    /// v1: send `CREATE DATABASE` at start (needs the right to; harmless when it exists).
    #[serde(default)]
    pub create_database: bool,
    /// Points per batch (one HTTP request).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// A batch of readings is sent at the latest this long after its first point.
    #[serde(default = "default_flush_s")]
    pub flush_interval_s: f64,
    /// Compress request bodies with gzip.
    #[serde(default = "default_true")]
    pub gzip: bool,
    /// One request's time limit.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: f64,
    /// Longest wait between attempts while the server is unreachable (the wait doubles from 1 s).
    #[serde(default = "default_retry_max_s")]
    pub retry_max_s: f64,
    /// Bound of the store-and-forward backlog, MB of stored (compressed) batches.
    #[serde(default = "default_backlog_mb")]
    pub backlog_max_mb: f64,
    /// The backlog's SQLite file; the service sets `<data dir>/influx-backlog.sqlite`.
    #[serde(default)]
    pub backlog_path: Option<PathBuf>,
    /// Points the readings channel holds before the producer's `try_send` drops readings.
    #[serde(default = "default_channel")]
    pub channel_capacity: usize,
    /// The sink writes its own counters (`kare_influx`) this often; 0 turns that off.
    #[serde(default = "default_stats_s")]
    pub stats_interval_s: f64,
    /// The service writes its health (`kare_health`: uptime, supply, buffers, serial errors,
    /// clock) this often. The fleet board's "not heard from" looks for it.
    #[serde(default = "default_health_s")]
    pub health_interval_s: f64,
    /// Tags added to every point.
    #[serde(default)]
    pub tags: SiteTags,
}

fn default_batch_size() -> usize {
    5000
}
fn default_flush_s() -> f64 {
    5.0
}
fn default_true() -> bool {
    true
}
fn default_timeout_s() -> f64 {
    10.0
}
fn default_retry_max_s() -> f64 {
    30.0
}
fn default_backlog_mb() -> f64 {
    256.0
}
fn default_channel() -> usize {
    20_000
}
fn default_stats_s() -> f64 {
    60.0
}
fn default_health_s() -> f64 {
    30.0
}

impl InfluxConfig {
    /// A v1 configuration with every default (tests, `kare demo`).
    pub fn v1(url: impl Into<String>, database: impl Into<String>) -> Self {
        InfluxConfig {
            api: Api::V1,
            url: url.into(),
            database: database.into(),
            retention_policy: None,
            username: None,
            password: None,
            token: None,
            org: String::new(),
            bucket: String::new(),
            create_database: false,
            batch_size: default_batch_size(),
            flush_interval_s: default_flush_s(),
            gzip: true,
            timeout_s: default_timeout_s(),
            retry_max_s: default_retry_max_s(),
            backlog_max_mb: default_backlog_mb(),
            backlog_path: None,
            channel_capacity: default_channel(),
            stats_interval_s: default_stats_s(),
            health_interval_s: default_health_s(),
            tags: SiteTags::default(),
        }
    }

    /// A v2 configuration with every default.
    pub fn v2(
        url: impl Into<String>,
        org: impl Into<String>,
        bucket: impl Into<String>,
        token: impl Into<String>,
    ) -> Self {
        InfluxConfig {
            api: Api::V2,
            org: org.into(),
            bucket: bucket.into(),
            token: Some(token.into()),
            ..InfluxConfig::v1(url, "")
        }
    }

    /// Fills the site tags left empty from `[site]`.
    pub fn with_site(mut self, site: &Site) -> Self {
        if self.tags.site.is_empty() {
            self.tags.site = site.id.clone();
        }
        if self.tags.customer.is_empty() {
            self.tags.customer = site.customer_id.clone();
        }
        if self.tags.tier.is_empty() {
            self.tags.tier = match site.tier {
                crate::actions::site::Tier::Critical => "critical",
                crate::actions::site::Tier::Important => "important",
                crate::actions::site::Tier::Standard => "standard",
            }
            .to_string();
        }
        self
    }

    /// Sets the backlog file to `<data_dir>/influx-backlog.sqlite` unless one is configured.
    pub fn with_data_dir(mut self, data_dir: impl Into<PathBuf>) -> Self {
        if self.backlog_path.is_none() {
            self.backlog_path = Some(data_dir.into().join("influx-backlog.sqlite"));
        }
        self
    }

    /// The site tags as (key, value) pairs, empty ones left out.
    pub fn site_tags(&self) -> Vec<(String, String)> {
        [
            ("customer", &self.tags.customer),
            ("site", &self.tags.site),
            ("tier", &self.tags.tier),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
    }

    /// Flush interval.
    pub fn flush_interval(&self) -> Duration {
        Duration::from_secs_f64(self.flush_interval_s)
    }

    /// Request time limit.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_s)
    }

    /// Longest retry wait.
    pub fn retry_max(&self) -> Duration {
        Duration::from_secs_f64(self.retry_max_s)
    }

    /// Backlog bound in bytes.
    pub fn backlog_max_bytes(&self) -> u64 {
        (self.backlog_max_mb * 1024.0 * 1024.0) as u64
    }

    /// Checks the values; the error names the key.
    pub fn validate(&self) -> Result<(), InfluxError> {
        let bad = |key: &str, message: &str| {
            Err(InfluxError::Config {
                key: key.to_string(),
                message: message.to_string(),
            })
        };
        match reqwest::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => return bad("url", "must be an http:// or https:// URL with a host"),
        }
        match self.api {
            Api::V1 => {
                if self.database.trim().is_empty() {
                    return bad("database", "must be set for api = \"v1\"");
                }
                if self.password.is_some() && self.username.is_none() {
                    return bad("username", "must be set when a password is");
                }
            }
            Api::V2 => {
                if self.org.trim().is_empty() {
                    return bad("org", "must be set for api = \"v2\"");
                }
                if self.bucket.trim().is_empty() {
                    return bad("bucket", "must be set for api = \"v2\"");
                }
            }
        }
        // Ranges (documented in `systemd/kare.toml`): each turns into a `Duration` or a size,
        // where a huge value would panic and a zero would spin.
        use crate::config::check::{above, text, within};
        let range = |r: Result<(), crate::config::ConfigProblem>| {
            r.map_err(|p| InfluxError::Config {
                key: p.key,
                message: p.problem,
            })
        };
        range(within(
            "batch_size",
            self.batch_size as f64,
            1.0,
            100_000.0,
            "points",
            "5000",
        ))?;
        range(above(
            "flush_interval_s",
            self.flush_interval_s,
            0.0,
            3600.0,
            "seconds",
            "5",
        ))?;
        range(above(
            "timeout_s",
            self.timeout_s,
            0.0,
            600.0,
            "seconds",
            "10",
        ))?;
        range(within(
            "retry_max_s",
            self.retry_max_s,
            0.1,
            3600.0,
            "seconds",
            "30",
        ))?;
        range(above(
            "backlog_max_mb",
            self.backlog_max_mb,
            0.0,
            1_048_576.0,
            "MB",
            "256",
        ))?;
        range(within(
            "channel_capacity",
            self.channel_capacity as f64,
            1.0,
            10_000_000.0,
            "points",
            "20000",
        ))?;
        range(within(
            "stats_interval_s",
            self.stats_interval_s,
            0.0,
            86_400.0,
            "seconds (0: off)",
            "60",
        ))?;
        for (k, v) in [
            ("tags.site", &self.tags.site),
            ("tags.customer", &self.tags.customer),
            ("tags.tier", &self.tags.tier),
        ] {
            range(text(k, v, false))?;
        }
        if !(self.health_interval_s.is_finite() && (1.0..=3600.0).contains(&self.health_interval_s))
        {
            return bad(
                "health_interval_s",
                "must be 1 to 3600 seconds (the fleet board calls a site silent after 5 minutes)",
            );
        }
        if self.backlog_path.is_none() {
            return bad(
                "backlog_path",
                "must be set (the service puts it in its data directory)",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_v1_section_with_defaults() {
        let c: InfluxConfig = toml::from_str(
            r#"
            url = "http://127.0.0.1:8086"
            database = "kare"
            [tags]
            site = "S1"
            "#,
        )
        .unwrap();
        assert_eq!(c.api, Api::V1);
        assert_eq!(c.batch_size, 5000);
        assert!(c.gzip);
        assert_eq!(c.site_tags(), vec![("site".to_string(), "S1".to_string())]);
        let c = c.with_data_dir("/var/lib/kare");
        assert_eq!(
            c.backlog_path.as_deref(),
            Some(std::path::Path::new("/var/lib/kare/influx-backlog.sqlite"))
        );
        c.validate().unwrap();
    }

    #[test]
    fn v2_needs_org_and_bucket_and_names_the_key() {
        let c: InfluxConfig = toml::from_str(
            r#"
            api = "v2"
            url = "https://influx.example"
            org = "utility"
            "#,
        )
        .unwrap();
        let e = c.with_data_dir("/tmp").validate().unwrap_err();
        assert_eq!(e.to_string(), "influx.bucket: must be set for api = \"v2\"");
    }

    #[test]
    fn rejects_unknown_keys_and_bad_urls() {
        assert!(toml::from_str::<InfluxConfig>("url = \"http://x\"\ndatabse = \"k\"").is_err());
        let c = InfluxConfig::v1("influx:8086", "kare").with_data_dir("/tmp");
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("influx.url"));
    }

    #[test]
    fn site_tags_come_from_the_site_unless_set() {
        let c = InfluxConfig::v1("http://x", "k").with_site(&Site::demo());
        assert_eq!(c.tags.site, "SITE-DEMO-01");
        assert_eq!(c.tags.customer, "CUST-0001");
        assert_eq!(c.tags.tier, "critical");
    }
}
