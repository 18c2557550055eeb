//! The commissioning checks' common shape: every step ends in a list of [`Check`]s, each with a
//! status a crew acts on (pass / warn / fail), what was read, and what to do about it.
//!
//! The record (`record.rs`), the terminal and JSON views (`view.rs`) and the tests all read this
//! one type; the text is already in the crew's language, the `id` is stable across languages for
//! scripts and tests.

use serde::{Deserialize, Serialize};

/// How a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// As it should be.
    Pass,
    /// Works, but something a crew should know or fix when they can (an unsynchronised clock,
    /// no UPS input configured). Does not fail the commissioning.
    Warn,
    /// Wrong: the installation is not signed off until it is fixed.
    Fail,
}

impl Status {
    /// The word shown in the plain-text view and the record (same in both languages: crews
    /// and scripts grep for it).
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// The steps, in the order a crew goes through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// The appliance itself: clock, disk, store, UPS inputs, version.
    Box,
    /// The serial ports and what answers on them.
    Ports,
    /// Each configured sensor node: identity, lock, voltages, frequency, phase sequence, link.
    Node,
    /// Meters: the configured ones read, and buses scanned on request.
    Meters,
    /// Node against meters: voltage level, power sign, phase order.
    Cross,
    /// Delivery routes and InfluxDB.
    Uplinks,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 6] = [
        Step::Box,
        Step::Ports,
        Step::Node,
        Step::Meters,
        Step::Cross,
        Step::Uplinks,
    ];

    /// Stable name (`box`, `ports`, …): the Fluent id suffix and the JSON value.
    pub fn name(self) -> &'static str {
        match self {
            Step::Box => "box",
            Step::Ports => "ports",
            Step::Node => "node",
            Step::Meters => "meters",
            Step::Cross => "cross",
            Step::Uplinks => "uplinks",
        }
    }
}

/// A value read during a check, kept in the record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// What it is (`offset_ms`, `voltage_a`, `free_mb`…): stable, not translated.
    pub name: String,
    /// The value.
    pub value: Value,
    /// Unit, when it has one (`V`, `Hz`, `ms`, `MB`, `°`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A reading's value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A number.
    Number(f64),
    /// Yes or no.
    Bool(bool),
    /// Anything else (a name, a version, an address).
    Text(String),
}

/// One check's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Which step it belongs to.
    pub step: Step,
    /// Stable id (`box.clock`, `node.phase-sequence`, `uplinks.route`): for scripts and tests.
    pub id: String,
    /// What it was about: a node, a port, a meter, an endpoint; empty for the box itself.
    #[serde(default)]
    pub subject: String,
    /// How it ended.
    pub status: Status,
    /// One line for the crew, in their language: what was found.
    pub summary: String,
    /// What to do, when it is not a pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// What was read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readings: Vec<Reading>,
}

impl Check {
    /// A check with no readings and no fix.
    pub fn new(step: Step, id: &str, subject: &str, status: Status, summary: String) -> Check {
        Check {
            step,
            id: id.to_string(),
            subject: subject.to_string(),
            status,
            summary,
            fix: None,
            readings: Vec::new(),
        }
    }

    /// Adds what to do (only shown when the check is not a pass).
    pub fn fix(mut self, fix: String) -> Check {
        self.fix = Some(fix);
        self
    }

    /// Adds a number read.
    pub fn number(mut self, name: &str, value: f64, unit: Option<&str>) -> Check {
        self.readings.push(Reading {
            name: name.into(),
            value: Value::Number(value),
            unit: unit.map(str::to_string),
        });
        self
    }

    /// Adds a text read.
    pub fn text(mut self, name: &str, value: impl Into<String>) -> Check {
        self.readings.push(Reading {
            name: name.into(),
            value: Value::Text(value.into()),
            unit: None,
        });
        self
    }

    /// Adds a yes/no read.
    pub fn flag(mut self, name: &str, value: bool) -> Check {
        self.readings.push(Reading {
            name: name.into(),
            value: Value::Bool(value),
            unit: None,
        });
        self
    }
}

/// The worst status of a list (pass when empty).
pub fn worst<'a>(checks: impl IntoIterator<Item = &'a Check>) -> Status {
    checks
        .into_iter()
        .map(|c| c.status)
        .max()
        .unwrap_or(Status::Pass)
}
