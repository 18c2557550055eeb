//! One type for every problem a configuration check finds, whichever component's section it is
//! in: the key (relative to the component while it checks itself, then prefixed with the section
//! by the composer) and what is wrong, with what would be right.

/// A value that makes no sense, found by a component checking its own section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The key, e.g. `node[1].dip_pct` (relative while a component checks itself: `dip_pct`).
    pub key: String,
    /// What is wrong and what would be right.
    pub problem: String,
}

impl ConfigProblem {
    /// A problem with `key`.
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> ConfigProblem {
        ConfigProblem {
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// The same problem, its key placed under `section` (`node[1]` + `dip_pct`); an empty key
    /// stands for the whole section.
    pub fn under(self, section: &str) -> ConfigProblem {
        let key = match (section.is_empty(), self.key.is_empty()) {
            (true, _) => self.key,
            (false, true) => section.to_string(),
            (false, false) => format!("{section}.{}", self.key),
        };
        ConfigProblem { key, ..self }
    }
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.key, self.problem)
    }
}

impl std::error::Error for ConfigProblem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_found_by_a_component_is_named_under_its_section() {
        let p = ConfigProblem::new("dip_pct", "must be below the swell threshold");
        assert_eq!(p.clone().under("node[1]").key, "node[1].dip_pct");
        assert_eq!(ConfigProblem::new("", "x").under("node[0]").key, "node[0]");
        assert_eq!(
            p.under("node[1]").to_string(),
            "`node[1].dip_pct`: must be below the swell threshold"
        );
    }
}
