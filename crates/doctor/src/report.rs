//! What the doctor found: one [`Finding`] per check, each ok, warn or FAIL with one line of
//! what was seen and, when something is wrong, what to do about it.

use std::fmt::Write as _;

use serde::Serialize;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, but worth a look (an update that rolled back, a check that could not run).
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What was checked: `stack`, `webhook`, `pool linux`, ...
    pub check: String,
    pub status: Status,
    /// What was found, in one line.
    pub found: String,
    /// What to do (a command or a console step); always given unless the check is ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(check: impl Into<String>, found: impl Into<String>) -> Finding {
        Finding {
            check: check.into(),
            status: Status::Ok,
            found: found.into(),
            fix: None,
        }
    }

    pub fn warn(
        check: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            check: check.into(),
            status: Status::Warn,
            found: found.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(
        check: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            check: check.into(),
            status: Status::Fail,
            found: found.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Every finding on one stack, in the order the checks ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub stack: String,
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether any check failed (`runway doctor` then exits non-zero).
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.status == Status::Fail)
    }

    /// The finding of `check`, for tests and callers that look at one.
    pub fn finding(&self, check: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.check == check)
    }

    /// Counts of ok, warn and FAIL.
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |status| self.findings.iter().filter(|f| f.status == status).count();
        (count(Status::Ok), count(Status::Warn), count(Status::Fail))
    }

    /// The report as `runway doctor` prints it: one line per check, its fix under it.
    pub fn to_text(&self) -> String {
        let width = self
            .findings
            .iter()
            .map(|f| f.check.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = format!("runway doctor: stack {}\n", self.stack);
        for finding in &self.findings {
            let _ = writeln!(
                out,
                "  {:<4}  {:<width$}  {}",
                finding.status.label(),
                finding.check,
                finding.found
            );
            if let Some(fix) = &finding.fix {
                let _ = writeln!(out, "        {:<width$}  → {fix}", "");
            }
        }
        let (ok, warn, fail) = self.counts();
        let _ = writeln!(out, "{ok} ok, {warn} warn, {fail} failed");
        out
    }

    /// The report as JSON (`runway doctor --json`).
    pub fn to_json(&self) -> serde_json::Value {
        let (ok, warn, fail) = self.counts();
        serde_json::json!({
            "stack": self.stack,
            "failed": self.failed(),
            "counts": {"ok": ok, "warn": warn, "fail": fail},
            "findings": self.findings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_printed_with_its_fix_and_fails_the_report() {
        let report = Report {
            stack: "runway".into(),
            findings: vec![
                Finding::ok("stack", "UPDATE_COMPLETE"),
                Finding::fail("webhook", "answered 401", "rotate the secret"),
            ],
        };
        assert!(report.failed());
        let text = report.to_text();
        assert!(
            text.contains("  ok    stack    UPDATE_COMPLETE\n"),
            "{text}"
        );
        assert!(text.contains("  FAIL  webhook  answered 401\n"), "{text}");
        assert!(text.contains("→ rotate the secret"), "{text}");
        assert!(text.ends_with("1 ok, 0 warn, 1 failed\n"), "{text}");
        let json = report.to_json();
        assert_eq!(json["failed"], true);
        assert_eq!(json["findings"][1]["status"], "fail");
        assert_eq!(json["findings"][1]["fix"], "rotate the secret");
        assert!(json["findings"][0].get("fix").is_none());
    }

    #[test]
    fn warnings_alone_do_not_fail() {
        let report = Report {
            stack: "runway".into(),
            findings: vec![Finding::warn("stack", "UPDATE_ROLLBACK_COMPLETE", "look")],
        };
        assert!(!report.failed());
    }
}
