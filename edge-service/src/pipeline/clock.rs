//! Whether the appliance's clock is synchronised, as the kernel knows it.
//!
//! Event times are only as good as the clock: IEC 61000-4-30 Class A asks for ±20 ms to UTC.
//! NTP daemons (systemd-timesyncd, chrony, ntpd) and GPS PPS set the kernel's synchronisation
//! state, which `ntp_adjtime(2)` reads without changing anything: no daemon-specific query.

/// The kernel's view of the clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockSync {
    /// Whether a time daemon has marked the clock synchronised (not `TIME_ERROR`).
    pub synced: bool,
    /// The offset being corrected, milliseconds (when synced).
    pub offset_ms: Option<f64>,
    /// The kernel's estimated error, milliseconds (when synced).
    pub est_error_ms: Option<f64>,
}

/// Reads the kernel's synchronisation state; `None` where it cannot be read (not Linux).
pub fn kernel_sync() -> Option<ClockSync> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `timex` is plain data; with `modes = 0` ntp_adjtime only reads into it.
        let mut t: libc::timex = unsafe { std::mem::zeroed() };
        let state = unsafe { libc::ntp_adjtime(&mut t) };
        if state < 0 {
            return None;
        }
        let synced = state != libc::TIME_ERROR;
        // `offset` is in microseconds, or nanoseconds when STA_NANO is set.
        let offset_ms = if t.status & libc::STA_NANO != 0 {
            t.offset as f64 / 1e6
        } else {
            t.offset as f64 / 1e3
        };
        Some(ClockSync {
            synced,
            offset_ms: synced.then_some(offset_ms),
            est_error_ms: synced.then_some(t.esterror as f64 / 1e3),
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn the_kernel_answers_and_an_unsynced_clock_reports_no_offset() {
        let c = kernel_sync().expect("ntp_adjtime answers on Linux");
        if !c.synced {
            assert_eq!(c.offset_ms, None);
        } else {
            assert!(c.offset_ms.unwrap().is_finite());
        }
    }
}
