//! Step "Cross-checks": the node and the meters measure the same supply, so they must agree.
//! A voltage that differs by √3 is a PT ratio set phase-to-neutral on a line-to-line
//! transformer (or the reverse); another difference is a ratio or a wire; a negative active power on
//! one phase is a CT mounted the wrong way round (P1/P2 or S1/S2 swapped).
//!
//! Pure: the node's mean voltages and each meter's latest values in, checks out.

use super::check::{Check, Status, Step};
use super::meters::MeterValues;
use crate::sources::meters::readings::Quantity;
use crate::web::i18n::Lang;

/// How far a meter's phase voltage may be from the node's (the 2 %: meter class 0.5 and
/// the node's 0.1 % leave room, a wrong PT ratio or a wire on the wrong terminal does not).
pub const VOLTAGE_AGREEMENT_PCT: f64 = 2.0;

/// Below this many kilowatts (50 W) a phase's power sign means nothing (no load on it).
/// Meters' active power is in kW (`Quantity::unit`).
pub const POWER_SIGN_MIN_KW: f64 = 0.05;

/// A node's mean phase voltages, named.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeVoltages {
    /// The node's name.
    pub node: String,
    /// Mean voltage per phase A, B, C.
    pub volts: [f64; 3],
}

/// The cross-checks for every meter that reads phase voltages or per-phase power.
pub fn cross_checks(lang: Lang, nodes: &[NodeVoltages], meters: &[MeterValues]) -> Vec<Check> {
    let mut out = Vec::new();
    for m in meters {
        let subject = format!("{}/{}", m.bus, m.device);
        if m.values.is_empty() {
            // A meter that did not answer is the meters step's failure; nothing to compare.
            continue;
        }
        match (m.phase_voltages(), nearest(nodes, m)) {
            (Some(mv), Some(n)) => out.push(voltage_agreement(lang, &subject, n, mv)),
            // Said, not skipped: the crew must know a PT ratio was not checked.
            (None, _) if !nodes.is_empty() => out.push(
                Check::new(
                    Step::Cross,
                    "cross.voltage",
                    &subject,
                    Status::Warn,
                    lang.ta("cm-cross-voltage-unchecked", &[("meter", subject.as_str())]),
                )
                .fix(lang.t("cm-cross-voltage-unchecked-fix")),
            ),
            _ => {}
        }
        // A meter without per-phase power (a DL/T 645 tariff meter's usual reads) has no CT
        // direction to judge; its voltages are still compared above.
        out.extend(power_signs(lang, &subject, m));
    }
    out
}

/// The node whose voltages are nearest the meter's (a site with several nodes: the meter is on
/// one of their supplies).
fn nearest<'a>(nodes: &'a [NodeVoltages], m: &MeterValues) -> Option<&'a NodeVoltages> {
    let mv = m.phase_voltages()?;
    nodes.iter().min_by(|a, b| {
        let d = |n: &NodeVoltages| -> f64 {
            (0..3)
                .map(|i| (n.volts[i] - mv[i]).abs())
                .fold(0.0, f64::max)
        };
        d(a).total_cmp(&d(b))
    })
}

fn voltage_agreement(lang: Lang, subject: &str, n: &NodeVoltages, mv: [f64; 3]) -> Check {
    let names = ["A", "B", "C"];
    let mut worst = (0usize, 0.0f64);
    for (i, (m, nv)) in mv.iter().zip(n.volts).enumerate() {
        let off = if nv > 0.0 {
            (m / nv - 1.0) * 100.0
        } else {
            f64::INFINITY
        };
        if off.abs() > worst.1.abs() || i == 0 {
            worst = (i, off);
        }
    }
    let (i, off) = worst;
    let ratio = mv[i] / n.volts[i].max(1e-9);
    let args = [
        ("meter", subject.to_string()),
        ("node", n.node.clone()),
        ("phase", names[i].to_string()),
        ("meter_v", format!("{:.1}", mv[i])),
        ("node_v", format!("{:.1}", n.volts[i])),
        ("off", format!("{off:+.1}")),
    ];
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let sqrt3 = 3f64.sqrt();
    let (status, summary, fix) = if off.abs() <= VOLTAGE_AGREEMENT_PCT {
        (Status::Pass, "cm-cross-voltage", None)
    } else if (ratio / sqrt3 - 1.0).abs() < 0.05 || (ratio * sqrt3 - 1.0).abs() < 0.05 {
        (
            Status::Fail,
            "cm-cross-voltage-sqrt3",
            Some("cm-cross-voltage-sqrt3-fix"),
        )
    } else {
        (
            Status::Fail,
            "cm-cross-voltage-off",
            Some("cm-cross-voltage-off-fix"),
        )
    };
    let mut c = Check::new(
        Step::Cross,
        "cross.voltage",
        subject,
        status,
        lang.ta(summary, &args),
    );
    for k in 0..3 {
        c = c
            .number(
                &format!("meter_voltage_{}", names[k].to_lowercase()),
                mv[k],
                Some("V"),
            )
            .number(
                &format!("node_voltage_{}", names[k].to_lowercase()),
                n.volts[k],
                Some("V"),
            );
    }
    c.fix = fix.map(|f| lang.ta(f, &args));
    c
}

/// A phase's power factor at or above this is its own current (a reversed CT shows −PF here).
pub const PAIRED_PF: f64 = 0.8;
/// A phase whose |PF| is at most this while another phase's is at least [`PAIRED_PF`] carries
/// another phase's current: a CT and a voltage 120° apart read cos(±120° + φ), about 0.5.
pub const MISPAIRED_PF: f64 = 0.65;

/// What a phase's active power and power factor say about its CT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ct {
    /// Too little load to tell.
    Unloaded,
    /// Positive power at a plausible power factor.
    Right,
    /// Negative power at a plausible power factor: the CT (or S1/S2) is the wrong way round.
    Reversed,
    /// A power factor far below the other phases': this CT is on another phase's conductor.
    Mispaired,
}

fn power_signs(lang: Lang, subject: &str, m: &MeterValues) -> Option<Check> {
    let get = |q| m.values.get(&q).copied();
    let p = [
        get(Quantity::ActivePowerA),
        get(Quantity::ActivePowerB),
        get(Quantity::ActivePowerC),
    ];
    if p.iter().all(Option::is_none) {
        return None;
    }
    let pf = [
        get(Quantity::PowerFactorA),
        get(Quantity::PowerFactorB),
        get(Quantity::PowerFactorC),
    ];
    let names = ["A", "B", "C"];
    // With per-phase power factors, a phase far below the others is a CT on another phase
    // (turning it round would only flip the sign of a wrong reading).
    let some_paired = pf.iter().any(|f| f.is_some_and(|f| f.abs() >= PAIRED_PF));
    let ct: Vec<Ct> = (0..3)
        .map(|i| match p[i] {
            None => Ct::Unloaded,
            Some(v) if v.abs() < POWER_SIGN_MIN_KW => Ct::Unloaded,
            Some(v) => {
                let mispaired = some_paired && pf[i].is_some_and(|f| f.abs() <= MISPAIRED_PF);
                if mispaired {
                    Ct::Mispaired
                } else if v < 0.0 {
                    Ct::Reversed
                } else {
                    Ct::Right
                }
            }
        })
        .collect();
    let which = |k: Ct| -> String {
        ct.iter()
            .zip(names)
            .filter(|(c, _)| **c == k)
            .map(|(_, n)| n)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (reversed, mispaired) = (which(Ct::Reversed), which(Ct::Mispaired));
    let loaded = ct.iter().filter(|c| **c != Ct::Unloaded).count();
    let n_reversed = ct.iter().filter(|c| **c == Ct::Reversed).count();
    let id = "cross.power-sign";
    let mut c = if !mispaired.is_empty() {
        let args = [("meter", subject), ("phases", mispaired.as_str())];
        Check::new(
            Step::Cross,
            id,
            subject,
            Status::Fail,
            lang.ta("cm-cross-power-mispaired", &args),
        )
        .fix(lang.ta("cm-cross-power-mispaired-fix", &args))
    } else if n_reversed > 0 && n_reversed < 3 {
        let args = [("meter", subject), ("phases", reversed.as_str())];
        Check::new(
            Step::Cross,
            id,
            subject,
            Status::Fail,
            lang.ta("cm-cross-power-reversed", &args),
        )
        .fix(lang.ta("cm-cross-power-reversed-fix", &args))
    } else if n_reversed == 3 {
        Check::new(
            Step::Cross,
            id,
            subject,
            Status::Warn,
            lang.ta("cm-cross-power-all-export", &[("meter", subject)]),
        )
        .fix(lang.t("cm-cross-power-all-export-fix"))
    } else if loaded == 0 {
        Check::new(
            Step::Cross,
            id,
            subject,
            Status::Warn,
            lang.ta("cm-cross-power-unloaded", &[("meter", subject)]),
        )
        .fix(lang.t("cm-cross-power-unloaded-fix"))
    } else {
        Check::new(
            Step::Cross,
            id,
            subject,
            Status::Pass,
            lang.ta("cm-cross-power-ok", &[("meter", subject)]),
        )
    };
    if pf.iter().all(Option::is_none) && c.status == Status::Pass {
        // Without power factors a CT on another phase cannot be told from a right one.
        c.status = Status::Warn;
        c.summary = lang.ta("cm-cross-power-no-pf", &[("meter", subject)]);
        c.fix = Some(lang.t("cm-cross-power-no-pf-fix"));
    }
    for i in 0..3 {
        let n = names[i].to_lowercase();
        if let Some(v) = p[i] {
            c = c.number(&format!("active_power_{n}"), v, Some("kW"));
        }
        if let Some(f) = pf[i] {
            c = c.number(&format!("power_factor_{n}"), f, None);
        }
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter(v: [f64; 3], p: [f64; 3]) -> MeterValues {
        let mut m = MeterValues {
            bus: "bus-1".into(),
            device: "main".into(),
            protocol: "modbus",
            ..Default::default()
        };
        for (q, x) in [
            (Quantity::VoltageA, v[0]),
            (Quantity::VoltageB, v[1]),
            (Quantity::VoltageC, v[2]),
            (Quantity::ActivePowerA, p[0]),
            (Quantity::ActivePowerB, p[1]),
            (Quantity::ActivePowerC, p[2]),
        ] {
            m.values.insert(q, x);
        }
        // A reversed CT reads its phase's power factor with the sign turned.
        for (q, x) in [
            (Quantity::PowerFactorA, p[0]),
            (Quantity::PowerFactorB, p[1]),
            (Quantity::PowerFactorC, p[2]),
        ] {
            m.values.insert(q, 0.95f64.copysign(x));
        }
        m
    }

    fn node() -> Vec<NodeVoltages> {
        vec![NodeVoltages {
            node: "feeder-1".into(),
            volts: [230.0, 231.0, 229.5],
        }]
    }

    #[test]
    fn a_meter_that_agrees_within_two_percent_passes() {
        let c = cross_checks(Lang::En, &node(), &[meter([231.0, 229.0, 230.0], [0.9; 3])]);
        assert!(c.iter().all(|c| c.status == Status::Pass), "{c:#?}");
    }

    #[test]
    fn a_meter_reading_root_three_high_is_a_pt_ratio_fault() {
        let c = cross_checks(Lang::En, &node(), &[meter([398.0, 400.0, 397.5], [0.9; 3])]);
        let v = c.iter().find(|c| c.id == "cross.voltage").unwrap();
        assert_eq!(v.status, Status::Fail);
        assert!(v.summary.contains("√3"), "{}", v.summary);
        assert!(v.fix.as_ref().unwrap().contains("PT"));
    }

    #[test]
    fn one_negative_phase_power_is_a_reversed_ct_on_that_phase() {
        let c = cross_checks(
            Lang::En,
            &node(),
            &[meter([230.0, 231.0, 229.5], [0.9, -0.85, 0.91])],
        );
        let p = c.iter().find(|c| c.id == "cross.power-sign").unwrap();
        assert_eq!(p.status, Status::Fail);
        assert!(p.summary.contains('B'), "{}", p.summary);
        assert!(p.fix.as_ref().unwrap().contains("CT"));
    }

    #[test]
    fn a_ct_on_another_phase_is_not_called_reversed() {
        // Voltage A with the CT of phase B: P_A ≈ −0.5·U·I, PF_A ≈ −0.5.
        let mut m = meter([230.0, 231.0, 229.5], [-0.45, 0.9, 0.91]);
        m.values.insert(Quantity::PowerFactorA, -0.5);
        let c = cross_checks(Lang::En, &node(), &[m]);
        let p = c.iter().find(|c| c.id == "cross.power-sign").unwrap();
        assert_eq!(p.status, Status::Fail);
        assert!(p.summary.contains("different phase"), "{}", p.summary);
        assert!(
            !p.fix.as_ref().unwrap().contains("Turn the CT"),
            "{:?}",
            p.fix
        );
    }

    #[test]
    fn a_meter_without_phase_voltages_is_said_to_be_unchecked() {
        let mut m = MeterValues {
            bus: "bus-2".into(),
            device: "tariff".into(),
            protocol: "dlt645",
            ..Default::default()
        };
        m.values.insert(Quantity::EnergyImportKwh, 1234.5);
        let c = cross_checks(Lang::En, &node(), &[m]);
        assert_eq!(c.len(), 1, "{c:#?}");
        assert_eq!(c[0].status, Status::Warn);
        assert_eq!(c[0].id, "cross.voltage");
        assert!(c[0].summary.contains("not checked"), "{}", c[0].summary);
    }

    #[test]
    fn a_meter_five_percent_off_is_named_with_both_readings() {
        let c = cross_checks(Lang::En, &node(), &[meter([230.0, 231.0, 241.0], [0.9; 3])]);
        let v = c.iter().find(|c| c.id == "cross.voltage").unwrap();
        assert_eq!(v.status, Status::Fail);
        assert!(
            v.summary.contains("241.0") && v.summary.contains("229.5"),
            "{}",
            v.summary
        );
    }
}
