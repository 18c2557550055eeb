//! `kare commission --write-config FILE`: the sources that answered, as a commented
//! configuration `kare run` accepts as it is. Everything else (site, routes, delivery, store,
//! InfluxDB) is carried over from the configuration commissioned, untouched, comments and all;
//! the `[[node]]`, `[[modbus]]` and `[[dlt645]]` sections are replaced by the ones found.

use crate::sources::meters::dlt645::config::Dlt645Entry;
use crate::sources::meters::modbus::config::ModbusEntry;
use crate::sources::pqlink::config::NodeEntry;
use serde::Serialize;

/// What answered during the run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Found {
    /// Sensor nodes that passed their checks' essentials (a Hello, voltages read).
    pub nodes: Vec<NodeEntry>,
    /// Modbus buses with the devices that answered.
    pub modbus: Vec<ModbusEntry>,
    /// DL/T 645 buses with the meters that answered.
    pub dlt645: Vec<Dlt645Entry>,
}

#[derive(Serialize)]
struct Nodes<'a> {
    node: &'a [NodeEntry],
}
#[derive(Serialize)]
struct Modbus<'a> {
    modbus: &'a [ModbusEntry],
}
#[derive(Serialize)]
struct Dlt645<'a> {
    dlt645: &'a [Dlt645Entry],
}

/// What a configuration without a `[site]` gets: `kare run` needs one, and the crew must fill
/// it in (the comments say so).
const SITE_PLACEHOLDER: &str = r#"
# The key account this appliance watches: fill in the utility's ids before `kare run`.
[site]
id = "SITE-1"
customer_id = "CUST-1"
customer_name = "Customer name"
"#;

/// What a configuration without `[routes]` gets, with its `[site]`.
const ROUTES_PLACEHOLDER: &str = r#"
# Where the site's tickets go: name [[delivery.endpoint]]s here; `repair = []` keeps them in
# the store only.
[routes]
repair = []
"#;

/// The file's text: `base` (the configuration commissioned) with its sources replaced by
/// `found`. `header` goes on top as comments.
pub fn render(base: &str, found: &Found, header: &[String]) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = base
        .parse()
        .map_err(|e: toml_edit::TomlError| e.to_string())?;
    for key in ["node", "modbus", "dlt645"] {
        doc.remove(key);
    }
    let mut out = String::new();
    for h in header {
        out.push_str(&format!("# {h}\n"));
    }
    out.push('\n');
    let rest = doc.to_string();
    out.push_str(rest.trim_end());
    out.push('\n');
    if !doc.contains_key("site") {
        out.push_str(SITE_PLACEHOLDER);
        if !doc.contains_key("routes") {
            out.push_str(ROUTES_PLACEHOLDER);
        }
    }
    let ser = |r: Result<String, toml::ser::Error>| r.map_err(|e| e.to_string());
    if !found.nodes.is_empty() {
        out.push_str("\n# Sensor nodes that answered with a Hello and voltages.\n");
        out.push_str(&ser(toml::to_string(&Nodes { node: &found.nodes }))?);
    }
    if !found.modbus.is_empty() {
        out.push_str("\n# Modbus buses, with the devices that answered.\n");
        out.push_str(&ser(toml::to_string(&Modbus {
            modbus: &found.modbus,
        }))?);
    }
    if !found.dlt645.is_empty() {
        out.push_str("\n# DL/T 645 buses, with the meters that answered.\n");
        out.push_str(&ser(toml::to_string(&Dlt645 {
            dlt645: &found.dlt645,
        }))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn a_written_configuration_loads_and_keeps_only_the_sources_found() {
        let base = r#"
# the site
[site]
id = "SITE-9"
customer_id = "C-9"
customer_name = "Plant"

[routes]
repair = []

[[node]]
name = "feeder-1"
port = "/dev/pts/7"
udin = 230.0

[[node]]
name = "feeder-2"
port = "/dev/pts/8"
udin = 230.0
"#;
        let cfg = Config::parse(base, "base.toml").unwrap();
        let found = Found {
            nodes: vec![cfg.node[0].clone()],
            ..Default::default()
        };
        let text = render(base, &found, &["written by a test".into()]).unwrap();
        let back = Config::parse(&text, "out.toml").unwrap();
        assert_eq!(back.node, vec![cfg.node[0].clone()]);
        assert_eq!(back.site, cfg.site);
        assert!(text.contains("# the site"), "{text}");
    }

    #[test]
    fn a_configuration_without_a_site_gets_one_to_fill_in_and_still_loads() {
        let text = render("", &Found::default(), &[]).unwrap();
        let back = Config::parse(&text, "out.toml").unwrap();
        assert_eq!(back.site.unwrap().id, "SITE-1");
    }
}
