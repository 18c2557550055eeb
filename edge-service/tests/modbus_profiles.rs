//! Modbus device profiles as files: what `load_profile` and `find_profile` accept, and how they
//! report a mistake (the file, the register, the field). Names sit in `mod modbus` so that
//! `cargo test -p kare modbus` selects them.

mod modbus {
    use kare::sources::meters::modbus::{
        builtin_profile, builtin_profile_names, find_profile, load_profile, ProfileError,
        RegisterKind, ValueType, WordOrder,
    };
    use kare::sources::meters::readings::Quantity;
    use std::path::Path;

    const GOOD: &str = r#"
manufacturer = "Acme"
model = "M1"
source = "Acme M1 Modbus map v1"
parity = "even"

[[register]]
name = "Ua"
quantity = "voltage_a"
kind = "holding"
address = 0x2006
type = "f32"
word_order = "little"
scale = 0.1
unit = "V"
"#;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_profile_file_loads_with_its_defaults_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "acme-m1.toml", GOOD);
        let p = load_profile(&path).unwrap();
        assert_eq!(
            (p.name.as_str(), p.manufacturer.as_str()),
            ("acme-m1", "Acme")
        );
        assert_eq!(p.baud, 9600, "default baud");
        let r = &p.registers[0];
        assert_eq!(r.quantity, Quantity::VoltageA);
        assert_eq!(r.kind, RegisterKind::Holding);
        assert_eq!(r.address, 0x2006);
        assert_eq!(r.value_type, ValueType::F32);
        assert_eq!(r.word_order, WordOrder::Little);
        assert_eq!(r.scale, 0.1);
        // find_profile takes a path as well as a built-in name.
        assert_eq!(find_profile(path.to_str().unwrap()).unwrap(), p);
        assert_eq!(
            find_profile("eastron-sdm630").unwrap(),
            builtin_profile("eastron-sdm630").unwrap()
        );
    }

    #[test]
    fn mistakes_are_reported_with_file_register_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                GOOD.replace("type = \"f32\"", "type = \"f23\""),
                "register \"Ua\": type \"f23\" is not one of u16, i16, u32, i32, u64, f32",
            ),
            (
                GOOD.replace("voltage_a", "voltage_q"),
                "register \"Ua\": quantity \"voltage_q\": unknown variant `voltage_q`",
            ),
            (
                GOOD.replace("scale = 0.1", "scale = 0"),
                "register \"Ua\": scale 0 must be a finite, non-zero multiplier",
            ),
            (
                GOOD.replace("kind = \"holding\"", "kind = \"coil\""),
                "register \"Ua\": kind \"coil\" is not one of input, holding",
            ),
            (
                GOOD.replace("parity = \"even\"", "parity = \"mark\""),
                "parity: \"mark\" is not one of none, even, odd",
            ),
            (
                format!(
                    "{GOOD}\n[[register]]\nname = \"Ub\"\nquantity = \"voltage_b\"\nkind = \"holding\"\naddress = 0x2007\ntype = \"u16\"\n"
                ),
                "register \"Ub\": address 8199 overlaps register \"Ua\" (holding 8198..8199)",
            ),
            (GOOD.replace("unit = \"V\"", "unit = \"kV\""), "unit \"kV\" is not voltage_a's unit \"V\""),
            (GOOD.replace("address = 0x2006", "adress = 0x2006"), "line 11: unknown field `adress`"),
        ];
        for (i, (text, want)) in cases.iter().enumerate() {
            let path = write(dir.path(), &format!("bad{i}.toml"), text);
            let e = load_profile(&path).unwrap_err().to_string();
            assert!(e.starts_with(&path.display().to_string()), "{e}");
            assert!(e.contains(want), "case {i}: {e}\n  wanted: {want}");
        }
        let missing = dir.path().join("missing.toml");
        assert!(matches!(
            load_profile(&missing),
            Err(ProfileError::Read { .. })
        ));
        let e = find_profile("sdm999").unwrap_err().to_string();
        for name in builtin_profile_names() {
            assert!(e.contains(name), "{e}");
        }
    }

    #[test]
    fn shipped_profile_files_are_the_built_in_ones() {
        // The files under profiles/modbus are what is compiled in: editing one and loading it
        // from disk gives the same profile as the binary's.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/modbus");
        for name in builtin_profile_names() {
            let from_disk = load_profile(&dir.join(format!("{name}.toml"))).unwrap();
            assert_eq!(from_disk, builtin_profile(name).unwrap(), "{name}");
        }
        let files = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "toml")
            })
            .count();
        assert_eq!(
            files,
            builtin_profile_names().len(),
            "every shipped file is built in"
        );
    }
}
