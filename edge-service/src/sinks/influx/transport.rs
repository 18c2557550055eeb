//! One HTTP write of one batch, and what its answer means for the batch.
//!
//! - v1: `POST {url}/write?db=&rp=&precision=ns` with reqwest (rustls), body gzip-compressed
//!   when configured, basic auth or `Authorization: Token`.
//! - v2: `POST {url}/api/v2/write?org=&bucket=&precision=ns` through the `influxdb2` crate
//!   (which compresses itself when asked).
//!
//! The answer is sorted into three outcomes ([`Outcome`]):
//! - written (2xx);
//! - retry later, batch kept: no connection, a time-out, 5xx, 429 (with its `Retry-After`), and
//!   also 401, 403 and 404: wrong credentials or a missing database are the server's set-up,
//!   not the data's fault, and once someone fixes them every kept point can still be written;
//! - rejected: any other 4xx (400 bad line protocol or a field-type conflict, 413, 422): the
//!   same bytes will never be accepted, so retrying would block the queue for ever.

use super::config::{Api, InfluxConfig};
use super::error::InfluxError;
use std::time::Duration;

/// What became of one write.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The server took the batch.
    Written,
    /// Not taken now; keep the batch and try again later.
    Retry {
        /// Why (for logs and stats).
        reason: String,
        /// The server's `Retry-After`, if it gave one.
        retry_after: Option<Duration>,
    },
    /// Refused as bad data: set aside, never retried.
    Rejected {
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
}

/// Sorts an HTTP status (not 2xx) and the server's message into an outcome.
pub fn classify(status: u16, message: String, retry_after: Option<Duration>) -> Outcome {
    match status {
        200..=299 => Outcome::Written,
        429 | 500..=599 => Outcome::Retry {
            reason: format!("HTTP {status}: {}", message.trim()),
            retry_after,
        },
        401 | 403 | 404 => Outcome::Retry {
            reason: format!(
                "HTTP {status} (check the sink's credentials, database or bucket): {}",
                message.trim()
            ),
            retry_after: None,
        },
        _ => Outcome::Rejected {
            status,
            message: message.trim().to_string(),
        },
    }
}

enum Inner {
    V1 {
        client: reqwest::Client,
        write_url: reqwest::Url,
        query_url: reqwest::Url,
        basic: Option<(String, Option<String>)>,
        token: Option<String>,
        database: String,
    },
    V2 {
        client: influxdb2::Client,
        bucket: String,
    },
}

/// The connection to the server (cheap to share: one HTTP client, reused connections).
pub struct Transport {
    inner: Inner,
    gzip: bool,
    timeout: Duration,
}

/// A pre-encoded body for `influxdb2`'s streaming writer.
struct Lines(Vec<u8>);

impl influxdb2::models::WriteDataPoint for Lines {
    fn write_data_point_to<W: std::io::Write>(&self, mut w: W) -> std::io::Result<()> {
        w.write_all(&self.0)
    }
}

fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let s = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    s.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// An endpoint under the configured URL, keeping any path prefix (a reverse proxy's).
fn endpoint(base: &str, path: &str) -> Result<reqwest::Url, InfluxError> {
    let mut u = reqwest::Url::parse(base).map_err(|e| InfluxError::Config {
        key: "url".into(),
        message: e.to_string(),
    })?;
    u.path_segments_mut()
        .map_err(|()| InfluxError::Config {
            key: "url".into(),
            message: "cannot be a base URL".into(),
        })?
        .pop_if_empty()
        .push(path);
    Ok(u)
}

impl Transport {
    /// Builds the client for the configured API.
    pub fn new(cfg: &InfluxConfig) -> Result<Transport, InfluxError> {
        let inner = match cfg.api {
            Api::V1 => {
                // reqwest is built with `rustls-no-provider`: the process must choose the
                // crypto provider (ring, as everywhere in kare). Already installed is fine.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let client = reqwest::Client::builder()
                    .timeout(cfg.timeout())
                    .connect_timeout(cfg.timeout().min(Duration::from_secs(5)))
                    .build()
                    .map_err(|e| InfluxError::Client(e.to_string()))?;
                let mut write_url = endpoint(&cfg.url, "write")?;
                {
                    let mut q = write_url.query_pairs_mut();
                    q.append_pair("db", &cfg.database);
                    if let Some(rp) = cfg.retention_policy.as_deref().filter(|s| !s.is_empty()) {
                        q.append_pair("rp", rp);
                    }
                    q.append_pair("precision", "ns");
                }
                Inner::V1 {
                    client,
                    write_url,
                    query_url: endpoint(&cfg.url, "query")?,
                    basic: cfg.username.clone().map(|u| (u, cfg.password.clone())),
                    token: cfg.token.clone().filter(|t| !t.is_empty()),
                    database: cfg.database.clone(),
                }
            }
            Api::V2 => {
                // influxdb2 panics on a URL it cannot parse: check first.
                endpoint(&cfg.url, "api")?;
                let mut b = influxdb2::ClientBuilder::new(
                    cfg.url.clone(),
                    cfg.org.clone(),
                    cfg.token.clone().unwrap_or_default(),
                );
                if cfg.gzip {
                    b = b.gzip(true);
                }
                Inner::V2 {
                    client: b.build().map_err(|e| InfluxError::Client(e.to_string()))?,
                    bucket: cfg.bucket.clone(),
                }
            }
        };
        Ok(Transport {
            inner,
            gzip: cfg.gzip,
            timeout: cfg.timeout(),
        })
    }

    /// Writes one body of line protocol.
    pub async fn write(&self, body: Vec<u8>) -> Outcome {
        match &self.inner {
            Inner::V1 {
                client,
                write_url,
                basic,
                token,
                ..
            } => {
                let mut req = client
                    .post(write_url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8");
                if let Some((u, p)) = basic {
                    req = req.basic_auth(u, p.as_ref());
                }
                if let Some(t) = token {
                    req = req.header(reqwest::header::AUTHORIZATION, format!("Token {t}"));
                }
                if self.gzip {
                    match super::backlog::compress(&body) {
                        Ok(gz) => {
                            req = req
                                .header(reqwest::header::CONTENT_ENCODING, "gzip")
                                .body(gz)
                        }
                        Err(e) => {
                            return Outcome::Retry {
                                reason: format!("compressing: {e}"),
                                retry_after: None,
                            }
                        }
                    }
                } else {
                    req = req.body(body);
                }
                match req.send().await {
                    Ok(resp) if resp.status().is_success() => Outcome::Written,
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let after = retry_after(resp.headers());
                        let text = resp.text().await.unwrap_or_default();
                        classify(status, server_message(&text), after)
                    }
                    Err(e) => Outcome::Retry {
                        reason: describe(&e),
                        retry_after: None,
                    },
                }
            }
            Inner::V2 { client, bucket } => {
                let stream = futures::stream::iter([Lines(body)]);
                let call = client.write_with_precision(
                    bucket,
                    stream,
                    influxdb2::api::write::TimestampPrecision::Nanoseconds,
                );
                match tokio::time::timeout(self.timeout, call).await {
                    Err(_) => Outcome::Retry {
                        reason: format!("no answer within {:?}", self.timeout),
                        retry_after: None,
                    },
                    Ok(Ok(())) => Outcome::Written,
                    Ok(Err(influxdb2::RequestError::Http { status, text })) => {
                        classify(status.as_u16(), server_message(&text), None)
                    }
                    Ok(Err(e)) => Outcome::Retry {
                        reason: e.to_string(),
                        retry_after: None,
                    },
                }
            }
        }
    }

    /// v1: `CREATE DATABASE` (idempotent). v2: nothing (buckets are made by the server's admin).
    pub async fn create_database(&self) -> Result<(), String> {
        let Inner::V1 {
            client,
            query_url,
            basic,
            token,
            database,
            ..
        } = &self.inner
        else {
            return Ok(());
        };
        let q = format!("CREATE DATABASE \"{}\"", database.replace('"', "\\\""));
        // In the URL rather than a form body: reqwest is built without its `form` feature.
        let mut url = query_url.clone();
        url.query_pairs_mut().append_pair("q", &q);
        let mut req = client.post(url);
        if let Some((u, p)) = basic {
            req = req.basic_auth(u, p.as_ref());
        }
        if let Some(t) = token {
            req = req.header(reqwest::header::AUTHORIZATION, format!("Token {t}"));
        }
        let resp = req.send().await.map_err(|e| describe(&e))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.is_success() && !text.contains("\"error\"") {
            Ok(())
        } else {
            Err(format!(
                "HTTP {}: {}",
                status.as_u16(),
                server_message(&text)
            ))
        }
    }
}

impl Transport {
    /// Whether the server holds a point of `measurement` with tag `check = id` (written by
    /// `kare commission`): v1 InfluxQL `SELECT`, and on a server without `/query` (VictoriaMetrics
    /// answers 400/404 there) its `/api/v1/export`. v2 is not read back (its Flux query API is
    /// not exercised here): `Err` says so.
    pub async fn read_back(&self, measurement: &str, id: &str) -> Result<bool, String> {
        let Inner::V1 {
            client,
            query_url,
            basic,
            token,
            database,
            ..
        } = &self.inner
        else {
            return Err("read-back is done over the v1 API only; the write was accepted".into());
        };
        let auth = |mut req: reqwest::RequestBuilder| {
            if let Some((u, p)) = basic {
                req = req.basic_auth(u, p.as_ref());
            }
            if let Some(t) = token {
                req = req.header(reqwest::header::AUTHORIZATION, format!("Token {t}"));
            }
            req
        };
        let q = format!(
            "SELECT * FROM \"{}\" WHERE \"check\" = '{}'",
            measurement.replace('"', ""),
            id.replace('\'', "")
        );
        let mut url = query_url.clone();
        url.query_pairs_mut()
            .append_pair("db", database)
            .append_pair("q", &q);
        let resp = auth(client.get(url))
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.is_success() && !text.contains("\"error\"") {
            return Ok(text.contains(id));
        }
        // VictoriaMetrics: `measurement_field{tags}`; the export lists matching series.
        let mut export = query_url.clone();
        export.set_path("/api/v1/export");
        export.query_pairs_mut().append_pair(
            "match[]",
            &format!("{{__name__=~\"{}_.*\",check=\"{}\"}}", measurement, id),
        );
        let resp = auth(client.get(export))
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let vm_status = resp.status();
        let vm_text = resp.text().await.unwrap_or_default();
        if vm_status.is_success() {
            return Ok(vm_text.contains(id));
        }
        Err(format!(
            "HTTP {}: {}",
            status.as_u16(),
            server_message(&text)
        ))
    }
}

/// The `error` member of InfluxDB's JSON error body, or the body itself, shortened.
fn server_message(text: &str) -> String {
    let msg = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| {
            v.get("error")
                .or_else(|| v.get("message"))
                .and_then(|m| m.as_str().map(str::to_string))
        })
        .unwrap_or_else(|| text.trim().to_string());
    let mut msg: String = msg.chars().take(500).collect();
    if msg.is_empty() {
        msg = "(no message)".into();
    }
    msg
}

/// A reqwest error with its causes (reqwest's own text is often just "error sending request").
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut s = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        e.to_string()
    };
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_sort_into_outcomes() {
        assert_eq!(classify(204, String::new(), None), Outcome::Written);
        assert!(matches!(
            classify(503, "x".into(), Some(Duration::from_secs(3))),
            Outcome::Retry { retry_after: Some(d), .. } if d == Duration::from_secs(3)
        ));
        assert!(matches!(
            classify(429, "slow down".into(), None),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            classify(404, "database not found".into(), None),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            classify(401, "unauthorized".into(), None),
            Outcome::Retry { .. }
        ));
        assert_eq!(
            classify(400, " partial write: field type conflict ".into(), None),
            Outcome::Rejected {
                status: 400,
                message: "partial write: field type conflict".into()
            }
        );
        assert!(matches!(
            classify(413, String::new(), None),
            Outcome::Rejected { .. }
        ));
    }

    #[test]
    fn server_messages_come_from_the_json_error() {
        assert_eq!(
            server_message(r#"{"error":"unable to parse 'x'"}"#),
            "unable to parse 'x'"
        );
        assert_eq!(
            server_message(r#"{"code":"invalid","message":"bad"}"#),
            "bad"
        );
        assert_eq!(server_message("plain"), "plain");
        assert_eq!(server_message(""), "(no message)");
    }

    #[test]
    fn endpoints_keep_a_path_prefix() {
        assert_eq!(
            endpoint("http://h:8086", "write").unwrap().as_str(),
            "http://h:8086/write"
        );
        assert_eq!(
            endpoint("https://h/influx/", "write").unwrap().as_str(),
            "https://h/influx/write"
        );
    }
}
