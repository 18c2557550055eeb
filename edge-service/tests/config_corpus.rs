//! A corpus of broken configurations, each with what kare must say about it: the key, the line,
//! and a fragment of the message (the range, an example, how to fix it). Issue 11: nothing
//! fails silently, so every one of these stops kare at start instead of running wrong.

use kare::config::{Config, ConfigError};

/// One broken configuration.
struct Case {
    /// What it is about.
    what: &'static str,
    toml: &'static str,
    /// The key named: `ConfigError::key` for a value, in the message for a syntax error.
    key: &'static str,
    /// The line reported (`None`: the key is in no line, e.g. a missing section).
    line: Option<usize>,
    /// A fragment of the message.
    says: &'static str,
}

/// A site with its repair desk routed: what most cases start from.
const ROUTED_SITE: &str = "[site]\nid = \"S1\"\ncustomer_id = \"C1\"\ncustomer_name = \"H\"\n\
[delivery]\n[[delivery.endpoint]]\nkind = \"webhook\"\nname = \"desk\"\n\
url = \"https://desk.example/t\"\nsecret = \"0123456789abcdef\"\n";

const CORPUS: &[Case] = &[
    // Item 1: every setting has a range.
    Case {
        what: "a demand window of 3e9 hours (panicked the rules at the first reading)",
        toml: "[rules]\ndemand_window_h = 3e9\n",
        key: "rules.demand_window_h",
        line: Some(2),
        says: "must be from 1 to 8760 hours, e.g. `demand_window_h = 168`; not 3e9",
    },
    Case {
        what: "NaN",
        toml: "[rules]\nflap_window_s = nan\n",
        key: "rules.flap_window_s",
        line: Some(2),
        says: "not NaN",
    },
    Case {
        what: "a retry age that overflows a Duration",
        toml: "[delivery]\nmax_age_s = 1e300\n",
        key: "delivery.max_age_s",
        line: Some(2),
        says: "from 1 to 2592000 seconds",
    },
    Case {
        what: "a retention that overflows a Duration",
        toml: "[store]\nretention_days = 1e300\n",
        key: "store.retention_days",
        line: Some(2),
        says: "at most 36500 days",
    },
    Case {
        what: "an InfluxDB flush interval that overflows a Duration",
        toml: "[influx]\nurl = \"http://influx:8086\"\ndatabase = \"kare\"\nflush_interval_s = 1e300\n",
        key: "influx.flush_interval_s",
        line: Some(4),
        says: "at most 3600 seconds",
    },
    Case {
        what: "a demo speed no simulator can keep",
        toml: "[demo]\nspeed = 1e9\n",
        key: "demo.speed",
        line: Some(2),
        says: "from 0 to 1000",
    },
    Case {
        what: "a node silent for no time",
        toml: "[[node]]\nname = \"a\"\nport = \"p\"\nudin = 230\nsilence_s = 0\n",
        key: "node[0].silence_s",
        line: Some(5),
        says: "from 0.1 to 3600 seconds",
    },
    Case {
        what: "a baud rate of 1",
        toml: "[[node]]\nname = \"a\"\nport = \"p\"\nudin = 230\nbaud = 1\n",
        key: "node[0].baud",
        line: Some(5),
        says: "e.g. `baud = 115200`",
    },
    // Item 2: repair tickets routed to nobody.
    Case {
        what: "a misspelt route (`repairs`): P1 tickets went nowhere",
        toml: "[routes]\nrepairs = [\"desk\"]\n",
        key: "repairs",
        line: Some(2),
        says: "unknown field",
    },
    Case {
        what: "a site whose [routes] forgets repair",
        toml: "[site]\nid = \"S1\"\ncustomer_id = \"C1\"\ncustomer_name = \"H\"\n\
[delivery]\n[[delivery.endpoint]]\nkind = \"webhook\"\nname = \"desk\"\n\
url = \"https://desk.example/t\"\nsecret = \"0123456789abcdef\"\n\
[routes]\ngenerator = [\"desk\"]\n",
        key: "routes.repair",
        line: Some(11),
        says: "or write `repair = []`",
    },
    Case {
        what: "a site with no [routes] at all",
        toml: ROUTED_SITE,
        key: "routes.repair",
        line: None,
        says: "route them to the 24-hour repair desk",
    },
    Case {
        what: "a route naming an endpoint that does not exist",
        toml: "[routes]\nrepair = [\"desk\"]\n",
        key: "routes.repair",
        line: Some(2),
        says: "no [[delivery.endpoint]] is named `desk`",
    },
    // Item 5: settings that make nonsense.
    Case {
        what: "a generator margin of -1 under [site.generator] (no such key there)",
        toml: "[site]\nid = \"S1\"\ncustomer_id = \"C1\"\ncustomer_name = \"H\"\n\
[site.generator]\neligible = true\nconnection_kva = 800\nmargin = -1\n",
        key: "margin",
        line: Some(8),
        says: "unknown field",
    },
    Case {
        what: "a generator margin of -1 (asked for a -9 kVA generator)",
        toml: "[rules]\ngenerator_margin = -1\n",
        key: "rules.generator_margin",
        line: Some(2),
        says: "from 1 to 3 times the peak, e.g. `generator_margin = 1.2`",
    },
    Case {
        what: "a negative generator rating",
        toml: "[site]\nid = \"S1\"\ncustomer_id = \"C1\"\ncustomer_name = \"H\"\n\
[site.generator]\neligible = true\nconnection_kva = -9\n",
        key: "site.generator.connection_kva",
        line: Some(7),
        says: "more than 0 and at most 100000 kVA",
    },
    Case {
        what: "a deep dip at 150 % (every dip would be deep)",
        toml: "[rules]\ndeep_dip_pct = 150\n",
        key: "rules.deep_dip_pct",
        line: Some(2),
        says: "from 1 to 99 %",
    },
    Case {
        what: "a hysteresis of 50 % (dips never end)",
        toml: "[[node]]\nname = \"a\"\nport = \"p\"\nudin = 230\nhysteresis_pct = 50\n",
        key: "node[0].hysteresis_pct",
        line: Some(5),
        says: "from 0 to 10 % of Udin",
    },
    Case {
        what: "a hysteresis within range but wider than half the dip margin",
        toml: "[[node]]\nname = \"a\"\nport = \"p\"\nudin = 230\ndip_pct = 95\nhysteresis_pct = 3\n",
        key: "node[0].hysteresis_pct",
        line: Some(6),
        says: "must be at most 2.5 % here",
    },
    Case {
        what: "a store of 0 MB",
        toml: "[store]\nmax_db_mb = 0\n",
        key: "store.max_db_mb",
        line: Some(2),
        says: "from 1 to 1048576 MB, e.g. `max_db_mb = 2048`",
    },
    Case {
        what: "a meter polled every 0 s",
        toml: "[[modbus]]\nname = \"m\"\nport = \"/dev/ttyUSB1\"\n[[modbus.device]]\nname = \"d\"\n\
slave_id = 1\nprofile = \"eastron-sdm630\"\npoll_every_s = 0\n",
        key: "modbus[0].device[0].poll_every_s",
        line: Some(8),
        says: "from 0.1 to 86400 seconds",
    },
    Case {
        what: "a meter polled every -5 s",
        toml: "[[modbus]]\nname = \"m\"\nport = \"/dev/ttyUSB1\"\n[[modbus.device]]\nname = \"d\"\n\
slave_id = 1\nprofile = \"eastron-sdm630\"\npoll_every_s = -5\n",
        key: "modbus[0].device[0].poll_every_s",
        line: Some(8),
        says: "not -5",
    },
    Case {
        what: "one serial port for a node and a Modbus bus",
        toml: "[[node]]\nname = \"a\"\nport = \"/dev/ttyUSB0\"\nudin = 230\n[[modbus]]\nname = \"m\"\n\
port = \"/dev/ttyUSB0\"\n[[modbus.device]]\nname = \"d\"\nslave_id = 1\nprofile = \"eastron-sdm630\"\n",
        key: "modbus[0].port",
        line: Some(7),
        says: "already used by `node[0].port`",
    },
    Case {
        what: "a node name with a terminal escape code",
        toml: "[[node]]\nname = \"feeder\\u001b[2J\"\nport = \"p\"\nudin = 230\n",
        key: "node[0].name",
        line: Some(2),
        says: "control characters (found U+001B)",
    },
    Case {
        what: "a bus name with a line break (a forged log line)",
        toml: "[[dlt645]]\nname = \"bus\\nkare: all fine\"\nport = \"/dev/ttyUSB2\"\n\
[[dlt645.device]]\nname = \"t\"\n",
        key: "dlt645[0].name",
        line: Some(2),
        says: "control characters (found U+000A)",
    },
    Case {
        what: "a device name with a bell",
        toml: "[[modbus]]\nname = \"m\"\nport = \"/dev/ttyUSB1\"\n[[modbus.device]]\nname = \"d\\u0007\"\n\
slave_id = 1\nprofile = \"eastron-sdm630\"\n",
        key: "modbus[0].device[0].name",
        line: Some(5),
        says: "control characters",
    },
    Case {
        what: "an endpoint name with an escape code",
        toml: "[delivery]\n[[delivery.endpoint]]\nkind = \"webhook\"\nname = \"desk\\u001b]0;x\\u0007\"\n\
url = \"https://desk.example/t\"\nsecret = \"0123456789abcdef\"\n",
        key: "delivery.endpoint[0].name",
        line: Some(4),
        says: "control characters",
    },
    Case {
        what: "a customer name with an escape code (it is in every ticket line)",
        toml: "[site]\nid = \"S1\"\ncustomer_id = \"C1\"\ncustomer_name = \"H\\u001b[31m\"\n",
        key: "site.customer_name",
        line: Some(4),
        says: "control characters",
    },
    Case {
        what: "a raw escape byte in the file is a syntax error that does not echo it",
        toml: "[[node]]\nname = \"a\u{1b}[2J\"\n",
        key: "\\u{1b}",
        line: Some(2),
        says: "invalid basic string",
    },
    // Unknown keys, section by section.
    Case {
        what: "unknown top-level key",
        toml: "listn = \"127.0.0.1:1\"\n",
        key: "listn",
        line: Some(1),
        says: "unknown field",
    },
    Case {
        what: "unknown key in [[node]]",
        toml: "[[node]]\nname = \"a\"\nport = \"p\"\nudin = 230\ndip = 80\n",
        key: "dip",
        line: Some(5),
        says: "unknown field",
    },
    Case {
        what: "unknown key in [rules]",
        toml: "[rules]\ndemand_window = 168\n",
        key: "demand_window",
        line: Some(2),
        says: "unknown field",
    },
    Case {
        what: "unknown key in [store]",
        toml: "[store]\nmax_db = 10\n",
        key: "max_db",
        line: Some(2),
        says: "unknown field",
    },
    Case {
        what: "unknown key in [delivery]",
        toml: "[delivery]\nretries = 3\n",
        key: "retries",
        line: Some(2),
        says: "unknown field",
    },
    Case {
        what: "unknown key in [[delivery.endpoint]]",
        toml: "[delivery]\n[[delivery.endpoint]]\nkind = \"webhook\"\nname = \"desk\"\n\
url = \"https://desk.example/t\"\nsecrett = \"0123456789abcdef\"\n",
        key: "secrett",
        line: Some(6),
        says: "unknown field",
    },
    Case {
        what: "unknown key in [site]",
        toml: "[site]\nid = \"S1\"\ncustomer_id = \"C1\"\ncustomer_name = \"H\"\ntierr = \"critical\"\n",
        key: "tierr",
        line: Some(5),
        says: "unknown field",
    },
    Case {
        what: "unknown key in [[modbus.device]]",
        toml: "[[modbus]]\nname = \"m\"\nport = \"/dev/ttyUSB1\"\n[[modbus.device]]\nname = \"d\"\n\
slave_id = 1\nprofile = \"eastron-sdm630\"\npoll_every = 5\n",
        key: "poll_every",
        line: Some(8),
        says: "unknown field",
    },
    Case {
        what: "unknown key in [[dlt645]]",
        toml: "[[dlt645]]\nname = \"t\"\nport = \"/dev/ttyUSB2\"\nbaudrate = 2400\n",
        key: "baudrate",
        line: Some(4),
        says: "unknown field",
    },
    Case {
        what: "unknown key in [ups]",
        toml: "[ups]\nmains_lost_gpio = 17\nbattery_low_gpio = 27\nactive_low = true\n",
        key: "active_low",
        line: Some(4),
        says: "unknown field",
    },
    Case {
        what: "unknown key in [influx]",
        toml: "[influx]\nurl = \"http://influx:8086\"\ndatabase = \"kare\"\nbatch = 10\n",
        key: "batch",
        line: Some(4),
        says: "unknown field",
    },
    Case {
        what: "unknown key in [demo]",
        toml: "[demo]\nspeeed = 10\n",
        key: "speeed",
        line: Some(2),
        says: "unknown field",
    },
];

#[test]
fn every_broken_configuration_is_refused_with_its_key_line_and_remedy() {
    let mut wrong = Vec::new();
    for c in CORPUS {
        let e = match Config::parse(c.toml, "kare.toml") {
            Ok(_) => {
                wrong.push(format!("{}: accepted", c.what));
                continue;
            }
            Err(e) => e,
        };
        let text = e.to_string();
        let key_ok = match &e {
            ConfigError::Value { key, .. } => key == c.key,
            _ => text.contains(c.key),
        };
        // A message reaches a terminal: never a raw control character in it.
        let clean = !text.chars().any(char::is_control);
        if !(key_ok && e.line() == c.line && text.contains(c.says) && clean) {
            wrong.push(format!(
                "{}: want key {} line {:?} saying {:?}; got key {:?} line {:?}: {text:?}",
                c.what,
                c.key,
                c.line,
                c.says,
                e.key(),
                e.line()
            ));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn repair_routed_to_nobody_on_purpose_is_accepted_with_a_warning() {
    let text = format!("{ROUTED_SITE}[routes]\nrepair = []\ngenerator = [\"desk\"]\n");
    let c = Config::parse(&text, "kare.toml").unwrap();
    let w = c.warnings();
    assert!(
        w.iter()
            .any(|w| w.contains("repair: empty") && w.contains("sent nowhere")),
        "{w:?}"
    );
    // Kinds left out are warned about, with how to route them.
    assert!(
        w.iter()
            .any(|w| w.contains("pq_notice: not set") && w.contains("pq_notice = [")),
        "{w:?}"
    );
    assert!(!w.iter().any(|w| w.contains("generator")), "{w:?}");
}

#[test]
fn the_routes_the_service_uses_follow_the_table() {
    let text = format!("{ROUTED_SITE}[routes]\nrepair = [\"desk\"]\n");
    let c = Config::parse(&text, "kare.toml").unwrap();
    let endpoints = &c.delivery.as_ref().unwrap().endpoint;
    let r = c.routes.resolve(endpoints);
    assert_eq!(r.by_kind["repair"].len(), 1);
    assert!(r.by_kind["maintenance"].is_empty());
}
