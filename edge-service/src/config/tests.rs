//! The configuration's own checks: defaults, lines of refused keys, the shipped sample, site
//! sections.

use super::*;

#[test]
fn a_minimal_node_takes_the_defaults() {
    let c = Config::parse(
        "[[node]]\nname = \"a\"\nport = \"/dev/ttyUSB0\"\nudin = 230\n",
        "k.toml",
    )
    .unwrap();
    assert_eq!(c.listen, default_listen());
    assert_eq!(c.node[0].baud, 115_200);
    assert_eq!(c.node[0].thresholds(), Thresholds::typical(230.0));
}

#[test]
fn a_wrong_type_names_the_line() {
    let e = Config::parse(
        "listen = \"127.0.0.1:1\"\n[[node]]\nname = \"a\"\nport = \"p\"\nudin = \"high\"\n",
        "k.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("k.toml") && e.contains("line 5"), "{e}");
}

#[test]
fn an_unknown_key_is_refused() {
    let e = Config::parse(
        "[[node]]\nname = \"a\"\nport = \"p\"\nudin = 230\ndip = 80\n",
        "k.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("dip"), "{e}");
}

#[test]
fn a_bad_threshold_names_the_node() {
    let e = Config::parse(
        "[[node]]\nname = \"a\"\nport = \"p\"\nudin = 230\n[[node]]\nname = \"b\"\nport = \"q\"\nudin = 230\ndip_pct = 5\n",
        "k.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`node[1].dip_pct`")
            && e.contains("line 9")
            && e.contains("interruption threshold"),
        "{e}"
    );
}

#[test]
fn one_serial_port_for_a_node_and_a_modbus_bus_is_refused() {
    let e = Config::parse(
        "[[node]]\nname = \"a\"\nport = \"/dev/ttyUSB0\"\nudin = 230\n[[modbus]]\nname = \"m\"\nport = \"/dev/ttyUSB0\"\n[[modbus.device]]\nname = \"d\"\nslave_id = 1\nprofile = \"eastron-sdm630\"\n",
        "k.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`modbus[0].port`") && e.contains("already used by `node[0].port`"),
        "{e}"
    );
}

#[test]
fn a_bus_named_like_another_source_is_refused() {
    let e = Config::parse(
        "[[node]]\nname = \"a\"\nport = \"/dev/ttyUSB0\"\nudin = 230\n[[modbus]]\nname = \"a\"\nport = \"/dev/ttyUSB1\"\n[[modbus.device]]\nname = \"m\"\nslave_id = 1\nprofile = \"eastron-sdm630\"\n",
        "k.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`modbus[0].name`") && e.contains("another node or bus"),
        "{e}"
    );
}

#[test]
fn duplicate_names_are_refused() {
    let e = Config::parse(
        "[[node]]\nname = \"a\"\nport = \"p\"\nudin = 230\n[[node]]\nname = \"a\"\nport = \"q\"\nudin = 230\n",
        "k.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("node[1].name"), "{e}");
}

#[test]
fn a_bad_store_value_names_its_key_once() {
    let e = Config::parse("[store]\nmax_batch = 0\n", "k.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`store.max_batch`"), "{e}");
}

#[test]
fn an_influx_section_is_checked_at_load_and_names_the_key() {
    let e = Config::parse(
        "[influx]\napi = \"v2\"\nurl = \"http://influx:8086\"\norg = \"utility\"\n",
        "k.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("`influx.bucket`"), "{e}");
    let e = Config::parse(
        "[influx]\nurl = \"http://influx:8086\"\ndatabase = \"kare\"\nbatch = 10\n",
        "k.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("batch") && e.contains("line 4"), "{e}");
    let c = Config::parse(
        "[influx]\nurl = \"http://influx:8086\"\ndatabase = \"kare\"\n",
        "k.toml",
    )
    .unwrap();
    let i = c.influx_for(Path::new("/var/lib/kare")).unwrap();
    assert_eq!(
        i.backlog_path.as_deref(),
        Some(Path::new("/var/lib/kare/influx-backlog.sqlite"))
    );
}

mod sample {
    #[test]
    fn the_shipped_sample_configuration_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../systemd/kare.toml");
        let c = super::super::Config::load(std::path::Path::new(path)).unwrap();
        assert_eq!(c.node.len(), 1);
        assert!(c.site.is_some());
        // Every section the README says it shows is there, and valid.
        assert_eq!((c.modbus.len(), c.dlt645.len()), (1, 1));
        assert!(c.store.is_some());
        assert_eq!(c.delivery.as_ref().map(|d| d.endpoint.len()), Some(3));
        assert!(c
            .routes
            .iter()
            .all(|(_, r)| r.is_some_and(|r| !r.is_empty())));
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    }
}

mod site_tests {
    #[test]
    fn a_site_without_a_customer_is_refused_by_key() {
        let e = super::super::Config::parse(
            "[site]\nid = \"S1\"\ncustomer_id = \"\"\ncustomer_name = \"H\"\n",
            "k.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`site.customer_id`"), "{e}");
    }

    #[test]
    fn an_eligible_site_needs_its_generator_rating() {
        let e = super::super::Config::parse(
            "[site]\nid = \"S1\"\ncustomer_id = \"C\"\ncustomer_name = \"H\"\n[site.generator]\neligible = true\n",
            "k.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("site.generator.connection_kva"), "{e}");
    }
}

#[test]
fn a_modbus_tcp_bus_names_its_address_key_and_line_when_it_is_not_host_port() {
    let e = Config::parse(
        "[[node]]\nname = \"a\"\nport = \"/dev/ttyUSB0\"\nudin = 230\n[[modbus]]\nname = \"gw\"\ntransport = \"tcp\"\naddress = \"gateway\"\n[[modbus.device]]\nname = \"d\"\nslave_id = 1\nprofile = \"eastron-sdm630\"\n",
        "k.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`modbus[0].address`") && e.contains("line 8") && e.contains("host:port"),
        "{e}"
    );
    let e = Config::parse(
        "[[node]]\nname = \"a\"\nport = \"/dev/ttyUSB0\"\nudin = 230\n[[modbus]]\nname = \"gw\"\ntransport = \"udp\"\naddress = \"10.0.0.2:502\"\n[[modbus.device]]\nname = \"d\"\nslave_id = 1\nprofile = \"eastron-sdm630\"\n",
        "k.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`modbus[0].transport`")
            && e.contains("line 7")
            && e.contains("rtu, tcp or rtu-over-tcp"),
        "{e}"
    );
}

#[test]
fn a_modbus_tcp_bus_is_accepted_and_one_gateway_address_serves_one_bus() {
    let bus = |name: &str| {
        format!("[[modbus]]\nname = \"{name}\"\ntransport = \"tcp\"\naddress = \"10.0.0.2:502\"\n[[modbus.device]]\nname = \"d\"\nslave_id = 1\nprofile = \"eastron-sdm630\"\n")
    };
    let node = "[[node]]\nname = \"a\"\nport = \"/dev/ttyUSB0\"\nudin = 230\n";
    let c = Config::parse(&format!("{node}{}", bus("gw")), "k.toml").unwrap();
    assert_eq!(
        c.modbus[0].bus_config().unwrap().transport,
        crate::sources::meters::modbus::Transport::Tcp("10.0.0.2:502".into())
    );
    let e = Config::parse(&format!("{node}{}{}", bus("gw"), bus("gw2")), "k.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`modbus[1].address`") && e.contains("already used by `modbus[0].address`"),
        "{e}"
    );
}
