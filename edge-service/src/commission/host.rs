//! Step "Box": the appliance itself. Is its clock synchronised (event and ticket times depend
//! on it), is there room on the disk and can the store be written (no event may be lost), can
//! the UPS inputs be read (the appliance's own supply), which kare is this.

use super::check::{Check, Status, Step};
use crate::sources::ups::config::UpsEntry;
use crate::web::i18n::Lang;
use std::path::Path;

/// The kernel's view of the clock discipline (adjtimex(2)), as NTP/chrony/systemd-timesyncd
/// leave it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockState {
    /// The kernel says the clock is synchronised (no `STA_UNSYNC`, state not `TIME_ERROR`).
    pub synced: bool,
    /// The last offset the time daemon reported, milliseconds.
    pub offset_ms: f64,
    /// The kernel's maximum error estimate, milliseconds.
    pub max_error_ms: f64,
}

/// Reads the clock state from the kernel.
pub fn read_clock() -> std::io::Result<ClockState> {
    // SAFETY: adjtimex with modes = 0 only reads into the zeroed struct we own.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let nano = tx.status & libc::STA_NANO != 0;
    let offset_ms = if nano {
        tx.offset as f64 / 1e6
    } else {
        tx.offset as f64 / 1e3
    };
    Ok(ClockState {
        synced: state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0,
        offset_ms,
        max_error_ms: tx.maxerror as f64 / 1e3,
    })
}

/// Offsets above this are worth a warning: IEC 61000-4-30 Class A asks for ±20 ms at 50 Hz; a
/// synchronised clock settles well below, a larger offset means the daemon is still stepping.
pub const CLOCK_OFFSET_WARN_MS: f64 = 20.0;

/// Judges the clock.
pub fn clock_check(lang: Lang, clock: std::io::Result<ClockState>) -> Check {
    let c = match clock {
        Ok(c) => c,
        Err(e) => {
            return Check::new(
                Step::Box,
                "box.clock",
                "",
                Status::Warn,
                lang.ta("cm-clock-unreadable", &[("error", &e.to_string())]),
            )
            .fix(lang.t("cm-clock-fix"))
        }
    };
    let offset = format!("{:.1}", c.offset_ms);
    let check = if !c.synced {
        Check::new(
            Step::Box,
            "box.clock",
            "",
            Status::Warn,
            lang.t("cm-clock-unsynced"),
        )
        .fix(lang.t("cm-clock-fix"))
    } else if c.offset_ms.abs() > CLOCK_OFFSET_WARN_MS {
        Check::new(
            Step::Box,
            "box.clock",
            "",
            Status::Warn,
            lang.ta("cm-clock-offset", &[("offset", &offset)]),
        )
        .fix(lang.t("cm-clock-fix"))
    } else {
        Check::new(
            Step::Box,
            "box.clock",
            "",
            Status::Pass,
            lang.ta("cm-clock-synced", &[("offset", &offset)]),
        )
    };
    check
        .flag("synchronised", c.synced)
        .number("offset_ms", c.offset_ms, Some("ms"))
        .number("max_error_ms", c.max_error_ms, Some("ms"))
}

/// Free space below which the store cannot be trusted to keep a month of events and history.
pub const DISK_FAIL_MB: f64 = 100.0;
/// Free space below which the crew is warned.
pub const DISK_WARN_MB: f64 = 1024.0;

/// Free and total megabytes of the file system holding `dir`.
pub fn disk_space(dir: &Path) -> std::io::Result<(f64, f64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("path holds a NUL byte"))?;
    // SAFETY: statvfs writes only into the zeroed struct we own; `c` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mb = |blocks: u64| blocks as f64 * st.f_frsize as f64 / 1_048_576.0;
    Ok((mb(st.f_bavail as u64), mb(st.f_blocks as u64)))
}

/// Judges the disk under the store's folder.
pub fn disk_check(lang: Lang, dir: &Path) -> Check {
    let where_ = dir.display().to_string();
    match disk_space(dir) {
        Err(e) => Check::new(
            Step::Box,
            "box.disk",
            &where_,
            Status::Fail,
            lang.ta(
                "cm-disk-unreadable",
                &[("dir", &where_), ("error", &e.to_string())],
            ),
        )
        .fix(lang.t("cm-store-fix")),
        Ok((free, total)) => {
            let args = [
                ("free", format!("{free:.0}")),
                ("total", format!("{total:.0}")),
                ("dir", where_.clone()),
            ];
            let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, fix) = if free < DISK_FAIL_MB {
                (Status::Fail, Some(lang.t("cm-disk-fix")))
            } else if free < DISK_WARN_MB {
                (Status::Warn, Some(lang.t("cm-disk-fix")))
            } else {
                (Status::Pass, None)
            };
            let mut c = Check::new(
                Step::Box,
                "box.disk",
                &where_,
                status,
                lang.ta("cm-disk", &args),
            )
            .number("free_mb", free, Some("MB"))
            .number("total_mb", total, Some("MB"));
            c.fix = fix;
            c
        }
    }
}

/// Writes, syncs and removes a file in the store's folder: the store's own writes would fail
/// the same way (read-only mount, wrong owner, full disk).
pub fn store_check(lang: Lang, dir: &Path) -> Check {
    let where_ = dir.display().to_string();
    let probe = dir.join(format!(".kare-commission-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut f = std::fs::File::create(&probe)?;
        std::io::Write::write_all(&mut f, b"kare commissioning write test\n")?;
        f.sync_all()?;
        std::fs::remove_file(&probe)
    })();
    match result {
        Ok(()) => Check::new(
            Step::Box,
            "box.store",
            &where_,
            Status::Pass,
            lang.ta("cm-store-ok", &[("dir", &where_)]),
        ),
        Err(e) => {
            let _ = std::fs::remove_file(&probe);
            Check::new(
                Step::Box,
                "box.store",
                &where_,
                Status::Fail,
                lang.ta(
                    "cm-store-bad",
                    &[("dir", &where_), ("error", &e.to_string())],
                ),
            )
            .fix(lang.t("cm-store-fix"))
        }
    }
}

/// Reads the UPS inputs, if configured.
pub fn ups_check(lang: Lang, ups: Option<&UpsEntry>) -> Check {
    let Some(u) = ups else {
        return Check::new(
            Step::Box,
            "box.ups",
            "",
            Status::Warn,
            lang.t("cm-ups-none"),
        )
        .fix(lang.t("cm-ups-none-fix"));
    };
    let pins = format!("GPIO {} / GPIO {}", u.mains_lost_gpio, u.battery_low_gpio);
    match u.read_now() {
        Err(e) => Check::new(
            Step::Box,
            "box.ups",
            &pins,
            Status::Fail,
            lang.ta("cm-ups-unreadable", &[("error", &e.to_string())]),
        )
        .fix(lang.t("cm-ups-fix")),
        Ok((mains_lost, battery_low)) => {
            let status = if mains_lost || battery_low {
                Status::Warn
            } else {
                Status::Pass
            };
            let id = match (mains_lost, battery_low) {
                (false, false) => "cm-ups-ok",
                (true, _) => "cm-ups-on-battery",
                (false, true) => "cm-ups-battery-low",
            };
            let mut c = Check::new(Step::Box, "box.ups", &pins, status, lang.t(id))
                .flag("mains_lost", mains_lost)
                .flag("battery_low", battery_low);
            if status != Status::Pass {
                c.fix = Some(lang.t("cm-ups-state-fix"));
            }
            c
        }
    }
}

/// The version of kare, and what it was built for.
pub fn version_check(lang: Lang) -> Check {
    let v = env!("CARGO_PKG_VERSION");
    let target = format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS);
    Check::new(
        Step::Box,
        "box.version",
        "",
        Status::Pass,
        lang.ta("cm-version", &[("version", v), ("target", &target)]),
    )
    .text("version", v)
    .text("target", target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsynchronised_clock_is_a_warning_with_the_fix() {
        let c = clock_check(
            Lang::En,
            Ok(ClockState {
                synced: false,
                offset_ms: 0.0,
                max_error_ms: 16000.0,
            }),
        );
        assert_eq!(c.status, Status::Warn);
        assert!(c.fix.unwrap().contains("timedatectl"));
    }

    #[test]
    fn a_synchronised_clock_far_off_is_a_warning_and_close_is_a_pass() {
        let at = |offset_ms| {
            clock_check(
                Lang::En,
                Ok(ClockState {
                    synced: true,
                    offset_ms,
                    max_error_ms: 5.0,
                }),
            )
            .status
        };
        assert_eq!(at(2.5), Status::Pass);
        assert_eq!(at(-45.0), Status::Warn);
    }

    #[test]
    fn a_store_folder_that_cannot_be_written_fails_with_the_reason() {
        let c = store_check(Lang::En, Path::new("/proc/kare-cannot-be-here"));
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.summary.contains("/proc/kare-cannot-be-here"),
            "{}",
            c.summary
        );
    }

    #[test]
    fn a_writable_store_folder_passes_and_is_left_clean() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(store_check(Lang::En, dir.path()).status, Status::Pass);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn no_ups_configured_is_a_warning() {
        assert_eq!(ups_check(Lang::En, None).status, Status::Warn);
    }
}
