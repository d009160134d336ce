//! The records of the WIT contract as plain Rust values, with the JSON form used by
//! `runway policy` and recorded cases. Field names follow the WIT names in snake case.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time in UTC. JSON: an RFC 3339 string, e.g. `"2026-11-25T09:30:00Z"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    pub seconds: i64,
    pub nanoseconds: u32,
}

impl Instant {
    pub fn from_unix(seconds: i64) -> Self {
        Instant {
            seconds,
            nanoseconds: 0,
        }
    }

    /// Parses an RFC 3339 date-time such as `2026-11-25T09:30:00Z`.
    pub fn parse_rfc3339(text: &str) -> Result<Self, String> {
        let parsed = chrono::DateTime::parse_from_rfc3339(text)
            .map_err(|e| format!("`{text}` is not an RFC 3339 date-time: {e}"))?;
        Ok(Instant {
            seconds: parsed.timestamp(),
            nanoseconds: parsed.timestamp_subsec_nanos(),
        })
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match chrono::DateTime::from_timestamp(self.seconds, self.nanoseconds) {
            Some(time) => write!(
                f,
                "{}",
                time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ),
            None => write!(f, "{}s", self.seconds),
        }
    }
}

impl Serialize for Instant {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Instant::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

/// A queued GitHub Actions job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Job {
    pub job_id: u64,
    pub run_id: u64,
    pub run_attempt: u32,
    /// `owner/name`.
    pub repository: String,
    pub owner: String,
    pub labels: Vec<String>,
    pub workflow_name: String,
    pub job_name: String,
    pub branch: Option<String>,
    pub default_branch: String,
    pub event_time: Instant,
    pub installation_id: u64,
}

impl Default for Job {
    fn default() -> Self {
        Job {
            job_id: 0,
            run_id: 0,
            run_attempt: 1,
            repository: String::new(),
            owner: String::new(),
            labels: Vec::new(),
            workflow_name: String::new(),
            job_name: String::new(),
            branch: None,
            default_branch: "main".into(),
            event_time: Instant::default(),
            installation_id: 0,
        }
    }
}

/// How instances are bought.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Market {
    #[default]
    Spot,
    OnDemand,
}

/// A pool of runners as configured by the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pool {
    pub name: String,
    pub labels: Vec<String>,
    pub instance_types: Vec<String>,
    pub image: Option<String>,
    pub disk_gib: Option<u32>,
    pub market: Market,
    pub max_running: u32,
    pub max_booting: u32,
    /// Settings for policies, in configuration order. JSON: an object of strings.
    #[serde(with = "params_json")]
    pub params: Vec<(String, String)>,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            name: String::new(),
            labels: Vec::new(),
            instance_types: Vec::new(),
            image: None,
            disk_gib: None,
            market: Market::Spot,
            max_running: 10,
            max_booting: 10,
            params: Vec::new(),
        }
    }
}

mod params_json {
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        params: &[(String, String)],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(params.len()))?;
        for (key, value) in params {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<(String, String)>, D::Error> {
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        map.into_iter()
            .map(|(key, value)| match value {
                serde_json::Value::String(text) => Ok((key, text)),
                serde_json::Value::Number(n) => Ok((key, n.to_string())),
                serde_json::Value::Bool(b) => Ok((key, b.to_string())),
                other => Err(serde::de::Error::custom(format!(
                    "pool param `{key}` must be a string, number or boolean, not {other}"
                ))),
            })
            .collect()
    }
}

/// Per-job changes to the pool's defaults; `None` keeps the pool's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_gib: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub market: Option<Market>,
}

impl Overrides {
    pub fn is_empty(&self) -> bool {
        *self == Overrides::default()
    }
}

/// The router's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RouteDecision {
    /// Run the job in `pool`, one of the pools the router was given.
    Run {
        pool: String,
        #[serde(default, skip_serializing_if = "Overrides::is_empty")]
        overrides: Overrides,
        reason: String,
    },
    /// Not a job for runway.
    Ignore { reason: String },
}

impl RouteDecision {
    pub fn reason(&self) -> &str {
        match self {
            RouteDecision::Run { reason, .. } | RouteDecision::Ignore { reason } => reason,
        }
    }
}

/// Runners counted in one scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Counts {
    pub running: u32,
    pub booting: u32,
    pub waiting: u32,
}

/// The live load of the chosen pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Load {
    pub pool: Counts,
    pub org: Counts,
    pub repo: Counts,
    pub now: Instant,
}

/// The throttle's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ThrottleDecision {
    /// Start the job now.
    Admit { reason: String },
    /// Park the job in the pool's queue: higher priority leaves first.
    Wait {
        priority: i32,
        recheck_after_seconds: u32,
        reason: String,
    },
    /// Never run the job.
    Reject { reason: String },
}

impl ThrottleDecision {
    pub fn reason(&self) -> &str {
        match self {
            ThrottleDecision::Admit { reason }
            | ThrottleDecision::Wait { reason, .. }
            | ThrottleDecision::Reject { reason } => reason,
        }
    }
}

/// What the router is given, as one JSON document: `{"job": …, "pools": […]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterInput {
    pub job: Job,
    pub pools: Vec<Pool>,
}

/// What the throttle is given, as one JSON document: `{"job": …, "pool": …, "load": …}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleInput {
    pub job: Job,
    pub pool: Pool,
    #[serde(default)]
    pub load: Load,
}
