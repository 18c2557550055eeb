//! Step "Ports": the serial ports of the box, by their stable names (`/dev/serial/by-id`, with the
//! USB vendor, product and serial number a crew can match to the adapter in their hand), and
//! whether every port the configuration names is there. What answers on each is found by the
//! node and meter steps (and by `--scan`).

use super::check::{Check, Status, Step};
use crate::web::i18n::Lang;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One serial port the system knows by a stable name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SerialPort {
    /// The stable name, e.g. `/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K5XYZ-if00-port0`.
    pub by_id: String,
    /// The device it points to, e.g. `/dev/ttyUSB0`.
    pub device: String,
    /// USB vendor id (hex), product id, serial number, manufacturer and product strings, when
    /// sysfs has them.
    pub usb: UsbInfo,
}

/// What sysfs says of a USB serial adapter.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UsbInfo {
    /// `idVendor`, e.g. `0403` (FTDI).
    pub vendor_id: Option<String>,
    /// `idProduct`, e.g. `6001`.
    pub product_id: Option<String>,
    /// `serial`.
    pub serial: Option<String>,
    /// `manufacturer`.
    pub manufacturer: Option<String>,
    /// `product`.
    pub product: Option<String>,
}

/// The ports under `by_id_dir` (normally `/dev/serial/by-id`), described from `sys_class_tty`
/// (normally `/sys/class/tty`). A missing folder is no ports (no USB serial adapter plugged in).
pub fn list_ports(by_id_dir: &Path, sys_class_tty: &Path) -> Vec<SerialPort> {
    let Ok(entries) = std::fs::read_dir(by_id_dir) else {
        return Vec::new();
    };
    let mut out: Vec<SerialPort> = entries
        .flatten()
        .map(|e| {
            let link = e.path();
            let device = std::fs::canonicalize(&link).unwrap_or_else(|_| link.clone());
            let tty = device
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            SerialPort {
                by_id: link.display().to_string(),
                device: device.display().to_string(),
                usb: usb_info(&sys_class_tty.join(&tty).join("device")),
            }
        })
        .collect();
    out.sort_by(|a, b| a.by_id.cmp(&b.by_id));
    out
}

/// Walks up from a tty's `device` link to the USB device holding `idVendor`.
fn usb_info(device: &Path) -> UsbInfo {
    let Ok(mut dir) = std::fs::canonicalize(device) else {
        return UsbInfo::default();
    };
    for _ in 0..6 {
        if dir.join("idVendor").is_file() {
            let read = |f: &str| {
                std::fs::read_to_string(dir.join(f))
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            };
            return UsbInfo {
                vendor_id: read("idVendor"),
                product_id: read("idProduct"),
                serial: read("serial"),
                manufacturer: read("manufacturer"),
                product: read("product"),
            };
        }
        if !dir.pop() {
            break;
        }
    }
    UsbInfo::default()
}

/// A port the configuration names, and which section names it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfiguredPort {
    /// The path as written.
    pub path: String,
    /// `node feeder-1`, `modbus bus-1`…
    pub used_by: String,
}

/// Names that the kernel hands out in plug-in order: after a reboot or a re-plug two adapters
/// may swap, and a meter bus would be read as a sensor node.
fn unstable_name(path: &str) -> bool {
    let name = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.starts_with("/dev/") && (name.starts_with("ttyUSB") || name.starts_with("ttyACM"))
}

/// The checks: one per configured port (there, and named stably), and one listing the ports
/// found that the configuration does not use.
pub fn port_checks(lang: Lang, found: &[SerialPort], configured: &[ConfiguredPort]) -> Vec<Check> {
    let mut out = Vec::new();
    for p in configured {
        let path = PathBuf::from(&p.path);
        let args = [("port", p.path.as_str()), ("used", p.used_by.as_str())];
        if !path.exists() {
            out.push(
                Check::new(
                    Step::Ports,
                    "ports.present",
                    &p.path,
                    Status::Fail,
                    lang.ta("cm-port-missing", &args),
                )
                .fix(lang.t("cm-port-missing-fix")),
            );
            continue;
        }
        let real = std::fs::canonicalize(&path).unwrap_or(path.clone());
        let stable = found
            .iter()
            .find(|f| Path::new(&f.device) == real)
            .map(|f| f.by_id.clone());
        let mut c = if unstable_name(&p.path) {
            let better = stable
                .clone()
                .unwrap_or_else(|| "/dev/serial/by-id/…".into());
            Check::new(
                Step::Ports,
                "ports.present",
                &p.path,
                Status::Warn,
                lang.ta("cm-port-unstable", &args),
            )
            .fix(lang.ta("cm-port-unstable-fix", &[("stable", &better)]))
        } else {
            Check::new(
                Step::Ports,
                "ports.present",
                &p.path,
                Status::Pass,
                lang.ta("cm-port-ok", &args),
            )
        };
        c = c.text("device", real.display().to_string());
        if let Some(info) = found.iter().find(|f| Path::new(&f.device) == real) {
            c = usb_readings(c, &info.usb);
        }
        out.push(c);
    }
    for f in found {
        let used = configured.iter().any(|p| {
            std::fs::canonicalize(&p.path)
                .map(|r| Path::new(&f.device) == r)
                .unwrap_or(false)
        });
        if !used {
            let c = Check::new(
                Step::Ports,
                "ports.unused",
                &f.by_id,
                Status::Pass,
                lang.ta(
                    "cm-port-unused",
                    &[("port", f.by_id.as_str()), ("device", f.device.as_str())],
                ),
            )
            .text("device", f.device.clone());
            out.push(usb_readings(c, &f.usb));
        }
    }
    if configured.is_empty() && found.is_empty() {
        out.push(
            Check::new(
                Step::Ports,
                "ports.none",
                "",
                Status::Warn,
                lang.t("cm-port-none"),
            )
            .fix(lang.t("cm-port-missing-fix")),
        );
    }
    out
}

/// The ports found that no configured section uses.
pub fn unused<'a>(found: &'a [SerialPort], configured: &[ConfiguredPort]) -> Vec<&'a SerialPort> {
    found
        .iter()
        .filter(|f| {
            !configured.iter().any(|p| {
                std::fs::canonicalize(&p.path)
                    .map(|r| Path::new(&f.device) == r)
                    .unwrap_or(false)
            })
        })
        .collect()
}

fn usb_readings(mut c: Check, usb: &UsbInfo) -> Check {
    for (name, v) in [
        ("usb_vendor", &usb.vendor_id),
        ("usb_product", &usb.product_id),
        ("usb_serial", &usb.serial),
        ("usb_manufacturer", &usb.manufacturer),
        ("usb_product_name", &usb.product),
    ] {
        if let Some(v) = v {
            c = c.text(name, v.clone());
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fake /dev/serial/by-id and /sys/class/tty with one FTDI adapter.
    fn fake_system() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let dev = root.path().join("dev");
        let by_id = dev.join("serial/by-id");
        std::fs::create_dir_all(&by_id).unwrap();
        std::fs::write(dev.join("ttyUSB0"), "").unwrap();
        symlink(
            dev.join("ttyUSB0"),
            by_id.join("usb-FTDI_FT232R_USB_UART_A10K5XYZ-if00-port0"),
        )
        .unwrap();
        let usb = root.path().join("sys/devices/usb1/1-1");
        let intf = usb.join("1-1:1.0/ttyUSB0");
        std::fs::create_dir_all(&intf).unwrap();
        for (f, v) in [
            ("idVendor", "0403\n"),
            ("idProduct", "6001\n"),
            ("serial", "A10K5XYZ\n"),
            ("manufacturer", "FTDI\n"),
            ("product", "FT232R USB UART\n"),
        ] {
            std::fs::write(usb.join(f), v).unwrap();
        }
        let tty = root.path().join("sys/class/tty/ttyUSB0");
        std::fs::create_dir_all(&tty).unwrap();
        symlink(&intf, tty.join("device")).unwrap();
        (root, by_id, tty.parent().unwrap().to_path_buf())
    }

    #[test]
    fn a_usb_adapter_is_listed_with_vendor_product_and_serial() {
        let (_root, by_id, sys) = fake_system();
        let ports = list_ports(&by_id, &sys);
        assert_eq!(ports.len(), 1);
        assert!(ports[0].device.ends_with("/dev/ttyUSB0"));
        assert_eq!(ports[0].usb.vendor_id.as_deref(), Some("0403"));
        assert_eq!(ports[0].usb.product_id.as_deref(), Some("6001"));
        assert_eq!(ports[0].usb.serial.as_deref(), Some("A10K5XYZ"));
    }

    #[test]
    fn a_configured_port_that_is_not_there_fails_and_names_the_section() {
        let checks = port_checks(
            Lang::En,
            &[],
            &[ConfiguredPort {
                path: "/dev/serial/by-id/usb-nothing-here".into(),
                used_by: "node feeder-1".into(),
            }],
        );
        assert_eq!(checks[0].status, Status::Fail);
        assert!(checks[0].summary.contains("node feeder-1"));
    }

    #[test]
    fn a_tty_usb_number_is_a_warning_that_names_the_stable_path() {
        let (root, by_id, sys) = fake_system();
        let found = list_ports(&by_id, &sys);
        let path = root.path().join("dev/ttyUSB0").display().to_string();
        // The helper judges by the name's shape; the fake lives under a temp folder, so check
        // the shape rule on the real-looking name and the by-id advice on the fake.
        assert!(unstable_name("/dev/ttyUSB0"));
        assert!(!unstable_name("/dev/serial/by-id/usb-FTDI-if00-port0"));
        let checks = port_checks(
            Lang::En,
            &found,
            &[ConfiguredPort {
                path,
                used_by: "modbus bus-1".into(),
            }],
        );
        assert_eq!(
            checks.len(),
            1,
            "the adapter is in use, not listed as unused"
        );
        assert_eq!(checks[0].status, Status::Pass);
    }
}
