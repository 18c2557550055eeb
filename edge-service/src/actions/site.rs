//! The key account this appliance watches: who the customer is, how to reach the site, who to
//! call, what generator it may get, and when the utility has announced planned outages.
//! Part of the configuration file (`[site]`), validated at start.

use crate::config::{check, ConfigProblem};
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveTime, Offset, Utc};
use serde::{Deserialize, Serialize};

/// Service tier of the account: decides ticket priority.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Life safety or very costly stops (hospitals, fabs): priority P1.
    Critical,
    /// Important accounts: P2.
    Important,
    /// Everyone else with kare: P3.
    #[default]
    Standard,
}

impl Tier {
    /// Repair-ticket priority for this tier.
    pub fn priority(self) -> &'static str {
        match self {
            Tier::Critical => "P1",
            Tier::Important => "P2",
            Tier::Standard => "P3",
        }
    }
}

/// A person to call.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Name.
    pub name: String,
    /// Role at the site (electrician on duty, facilities manager…).
    #[serde(default)]
    pub role: String,
    /// Phone, as dialled.
    #[serde(default)]
    pub phone: String,
    /// E-mail.
    #[serde(default)]
    pub email: String,
}

/// Mobile-generator eligibility.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generator {
    /// Whether the site may get a mobile generator.
    #[serde(default)]
    pub eligible: bool,
    /// Request one when an outage has lasted this many minutes.
    #[serde(default = "default_limit")]
    pub after_minutes: f64,
    /// The generator connection's rating, kVA: the most that can be connected, and the size asked
    /// for when no demand data is there.
    #[serde(default)]
    pub connection_kva: f64,
    /// Where the generator connects (for the crew).
    #[serde(default)]
    pub connection_point: String,
}

fn default_limit() -> f64 {
    30.0
}

/// An announced planned outage window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedOutage {
    /// Start (RFC 3339).
    pub start: DateTime<Utc>,
    /// End (RFC 3339).
    pub end: DateTime<Utc>,
    /// The utility's reference for the announcement.
    #[serde(default)]
    pub reference: String,
}

/// `[site]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Site id (the utility's).
    pub id: String,
    /// Customer id.
    pub customer_id: String,
    /// Customer name.
    pub customer_name: String,
    /// Service tier.
    #[serde(default)]
    pub tier: Tier,
    /// Street address.
    #[serde(default)]
    pub address: String,
    /// How to get in: keys, gates, who escorts.
    #[serde(default)]
    pub access_notes: String,
    /// Nominal supply voltage, kV (e.g. 10).
    #[serde(default)]
    pub nominal_kv: f64,
    /// The account manager.
    #[serde(default)]
    pub account_manager: Contact,
    /// People on site to call.
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// Mobile-generator terms.
    #[serde(default)]
    pub generator: Generator,
    /// Announced planned outages.
    #[serde(default)]
    pub planned_outage: Vec<PlannedOutage>,
    /// The site's clock, minutes east of UTC (480 for China Standard Time): where its days
    /// begin, for the daily power-quality notice. A fixed offset (no daylight saving); 0, UTC,
    /// by default.
    #[serde(default)]
    pub utc_offset_minutes: i32,
}

impl Site {
    /// The demo's site: a hospital with a generator connection.
    pub fn demo() -> Site {
        Site {
            id: "SITE-DEMO-01".into(),
            customer_id: "CUST-0001".into(),
            customer_name: "Demo General Hospital".into(),
            tier: Tier::Critical,
            address: "1 Demo Road".into(),
            access_notes: "Switch room B2; ask security for the key".into(),
            nominal_kv: 10.0,
            account_manager: Contact {
                name: "A. Manager".into(),
                role: "account manager".into(),
                phone: "+86 000 0000".into(),
                email: "am@example.invalid".into(),
            },
            contacts: vec![Contact {
                name: "Duty electrician".into(),
                role: "on site 24 h".into(),
                phone: "+86 000 0001".into(),
                email: String::new(),
            }],
            generator: Generator {
                eligible: true,
                after_minutes: 0.25,
                connection_kva: 800.0,
                connection_point: "Generator inlet GC-1, east wall".into(),
            },
            planned_outage: Vec::new(),
            utc_offset_minutes: 0,
        }
    }

    /// The site's clock (a fixed offset; UTC if the configured one is out of range).
    pub fn offset(&self) -> FixedOffset {
        FixedOffset::east_opt(self.utc_offset_minutes.saturating_mul(60))
            .unwrap_or_else(|| Utc.fix())
    }

    /// The site-local calendar day `at` falls on.
    pub fn local_day(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.offset()).date_naive()
    }

    /// The end of the site-local `day` (the next local midnight), as UTC.
    pub fn local_day_end(&self, day: NaiveDate) -> DateTime<Utc> {
        let next = day.succ_opt().unwrap_or(day);
        let midnight = next.and_time(NaiveTime::MIN);
        let utc = midnight - Duration::seconds(i64::from(self.offset().local_minus_utc()));
        DateTime::<Utc>::from_naive_utc_and_offset(utc, Utc)
    }

    /// The planned outage covering `at`, if any.
    pub fn planned_at(&self, at: DateTime<Utc>) -> Option<&PlannedOutage> {
        self.planned_outage
            .iter()
            .find(|p| p.start <= at && at < p.end)
    }

    /// Checks the values; the problem's key is relative to `[site]` (`generator.connection_kva`).
    /// Ranges (documented in `systemd/kare.toml`): ids and names without control characters
    /// (they are on every ticket and console line); nominal_kv 0 (not given) to 1000 kV;
    /// generator.after_minutes 0 to 1440 min; generator.connection_kva more than 0 (when
    /// eligible) to 100 000 kVA; utc_offset_minutes −840 to 840; planned outages end after start.
    pub fn validate(&self) -> Result<(), ConfigProblem> {
        if self.id.trim().is_empty() {
            return Err(ConfigProblem::new(
                "id",
                "must not be empty: tickets carry it, e.g. `id = \"SH-0042\"`",
            ));
        }
        check::name("id", &self.id)?;
        if self.customer_id.trim().is_empty() {
            return Err(ConfigProblem::new(
                "customer_id",
                "must not be empty: tickets carry it, e.g. `customer_id = \"C-10017\"`",
            ));
        }
        check::name("customer_id", &self.customer_id)?;
        check::text("customer_name", &self.customer_name, false)?;
        check::text("address", &self.address, true)?;
        check::text("access_notes", &self.access_notes, true)?;
        check::within(
            "nominal_kv",
            self.nominal_kv,
            0.0,
            1000.0,
            "kV (0: not given)",
            "10.0",
        )?;
        let people = std::iter::once(("account_manager".to_string(), &self.account_manager)).chain(
            self.contacts
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("contacts[{i}]"), c)),
        );
        for (key, c) in people {
            for (field, v) in [
                ("name", &c.name),
                ("role", &c.role),
                ("phone", &c.phone),
                ("email", &c.email),
            ] {
                check::text(&format!("{key}.{field}"), v, false)?;
            }
        }
        let g = &self.generator;
        check::within(
            "generator.after_minutes",
            g.after_minutes,
            0.0,
            1440.0,
            "minutes",
            "30",
        )?;
        if g.eligible {
            if g.connection_kva == 0.0 {
                return Err(ConfigProblem::new(
                    "generator.connection_kva",
                    "must be the connection's rating in kVA when the site is eligible, e.g. `connection_kva = 800`",
                ));
            }
            check::above(
                "generator.connection_kva",
                g.connection_kva,
                0.0,
                100_000.0,
                "kVA",
                "800",
            )?;
        } else {
            check::within(
                "generator.connection_kva",
                g.connection_kva,
                0.0,
                100_000.0,
                "kVA",
                "800",
            )?;
        }
        check::text("generator.connection_point", &g.connection_point, true)?;
        if self.utc_offset_minutes.abs() > 14 * 60 {
            return Err(ConfigProblem::new(
                "utc_offset_minutes",
                format!(
                    "must be from -840 to 840 minutes (±14 h) of UTC, e.g. `utc_offset_minutes = 480` for China; not {}",
                    self.utc_offset_minutes
                ),
            ));
        }
        for (i, p) in self.planned_outage.iter().enumerate() {
            if p.end <= p.start {
                return Err(ConfigProblem::new(
                    format!("planned_outage[{i}].end"),
                    "must be after its start",
                ));
            }
            check::text(
                &format!("planned_outage[{i}].reference"),
                &p.reference,
                false,
            )?;
        }
        Ok(())
    }
}
