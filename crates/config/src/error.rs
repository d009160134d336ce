//! What is wrong with a document: every problem found, each with its field path.

use std::fmt;

pub use runway_jobflow::Problem;

/// The spelling a document was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Json,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Toml => "TOML",
            Format::Json => "JSON",
        })
    }
}

/// Why a document cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The text is not TOML or JSON at all: nothing further could be checked.
    #[error("the configuration is not valid {format}: {message}")]
    Syntax { format: Format, message: String },
    /// The document was read, and these fields are wrong (at least one).
    #[error("{}", render(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// Every problem with its field path (a syntax error has the empty path).
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            ConfigError::Syntax { .. } => vec![Problem::new("", self.to_string())],
            ConfigError::Invalid(problems) => problems.clone(),
        }
    }
}

fn render(problems: &[Problem]) -> String {
    match problems {
        [one] => one.to_string(),
        many => {
            let mut text = format!("the configuration has {} problems:", many.len());
            for problem in many {
                text.push_str("\n  ");
                text.push_str(&problem.to_string());
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_problem_reads_as_a_line_and_several_as_a_list() {
        let one = ConfigError::Invalid(vec![Problem::new("pools[0].max_running", "must be 1+")]);
        assert_eq!(one.to_string(), "pools[0].max_running: must be 1+");
        let two = ConfigError::Invalid(vec![
            Problem::new("pools[0].labels", "needs labels"),
            Problem::new("router_fallback", "names no pool"),
        ]);
        assert_eq!(
            two.to_string(),
            "the configuration has 2 problems:\n  pools[0].labels: needs labels\n  \
             router_fallback: names no pool"
        );
    }
}
