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
///
/// Its JSON form (cases files) may also give the pool's allow-lists as runway's configuration
/// writes them (`allowed_instance_types`, `allowed_images`, `max_disk_gib`,
/// `allowed_markets`): they reach the policy as the `runway.` params the host adds
/// ([`Pool::with_allow_lists`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PoolJson")]
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

/// What runway lets a policy's overrides reach in a pool, beyond the pool's own settings. runway
/// enforces them after the policy decides; a policy reads them to stay inside.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowLists {
    /// Instance type patterns (`*` for any run of characters).
    pub instance_types: Vec<String>,
    /// Image patterns.
    pub images: Vec<String>,
    /// The largest disk an override may ask for.
    pub max_disk_gib: Option<u32>,
    /// Markets an override may ask for besides the pool's own.
    pub markets: Vec<Market>,
}

/// The prefix of the params the host adds to a pool; an operator's params may not use it.
pub const HOST_PARAM_PREFIX: &str = "runway.";

impl AllowLists {
    /// The allow-lists as the `runway.` params a policy reads: `runway.allowed_instance_types`,
    /// `runway.allowed_images`, `runway.allowed_markets` (comma-separated) and
    /// `runway.max_disk_gib`, each only when the pool sets it.
    pub fn params(&self) -> Vec<(String, String)> {
        let mut params = Vec::new();
        let mut list = |key: &str, items: Vec<&str>| {
            if !items.is_empty() {
                params.push((format!("{HOST_PARAM_PREFIX}{key}"), items.join(", ")));
            }
        };
        list(
            "allowed_instance_types",
            self.instance_types.iter().map(String::as_str).collect(),
        );
        list(
            "allowed_images",
            self.images.iter().map(String::as_str).collect(),
        );
        list(
            "allowed_markets",
            self.markets
                .iter()
                .map(|market| match market {
                    Market::Spot => "spot",
                    Market::OnDemand => "on-demand",
                })
                .collect(),
        );
        if let Some(max) = self.max_disk_gib {
            params.push((format!("{HOST_PARAM_PREFIX}max_disk_gib"), max.to_string()));
        }
        params
    }
}

impl Pool {
    /// The pool with its allow-lists appended to its params, after the operator's own (see
    /// [`AllowLists::params`]). Any `runway.` params it had are replaced.
    pub fn with_allow_lists(mut self, allow: &AllowLists) -> Pool {
        self.params
            .retain(|(key, _)| !key.starts_with(HOST_PARAM_PREFIX));
        self.params.extend(allow.params());
        self
    }
}

/// A pool's JSON form: the record's fields, plus the allow-lists as the configuration writes
/// them.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PoolJson {
    name: String,
    labels: Vec<String>,
    instance_types: Vec<String>,
    image: Option<String>,
    disk_gib: Option<u32>,
    market: Market,
    max_running: u32,
    max_booting: u32,
    #[serde(with = "params_json")]
    params: Vec<(String, String)>,
    allowed_instance_types: Vec<String>,
    allowed_images: Vec<String>,
    max_disk_gib: Option<u32>,
    allowed_markets: Vec<Market>,
}

impl Default for PoolJson {
    fn default() -> Self {
        let pool = Pool::default();
        PoolJson {
            name: pool.name,
            labels: pool.labels,
            instance_types: pool.instance_types,
            image: pool.image,
            disk_gib: pool.disk_gib,
            market: pool.market,
            max_running: pool.max_running,
            max_booting: pool.max_booting,
            params: pool.params,
            allowed_instance_types: Vec::new(),
            allowed_images: Vec::new(),
            max_disk_gib: None,
            allowed_markets: Vec::new(),
        }
    }
}

impl TryFrom<PoolJson> for Pool {
    type Error = String;

    fn try_from(json: PoolJson) -> Result<Pool, String> {
        if let Some((key, _)) = json
            .params
            .iter()
            .find(|(key, _)| key.starts_with(HOST_PARAM_PREFIX))
        {
            return Err(format!(
                "pool {:?} has the param `{key}`: params starting with `{HOST_PARAM_PREFIX}` are                  the ones runway adds; give the pool's allowed_instance_types, allowed_images,                  max_disk_gib or allowed_markets instead",
                json.name
            ));
        }
        let allow = AllowLists {
            instance_types: json.allowed_instance_types,
            images: json.allowed_images,
            max_disk_gib: json.max_disk_gib,
            markets: json.allowed_markets,
        };
        Ok(Pool {
            name: json.name,
            labels: json.labels,
            instance_types: json.instance_types,
            image: json.image,
            disk_gib: json.disk_gib,
            market: json.market,
            max_running: json.max_running,
            max_booting: json.max_booting,
            params: json.params,
        }
        .with_allow_lists(&allow))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_reach_a_policy_as_runway_params_after_the_operators_own() {
        let pool = Pool {
            name: "linux".into(),
            params: vec![
                ("tier".into(), "gold".into()),
                ("runway.max_disk_gib".into(), "stale".into()),
            ],
            ..Pool::default()
        }
        .with_allow_lists(&AllowLists {
            instance_types: vec!["c7g.*".into(), "m7g.large".into()],
            images: Vec::new(),
            max_disk_gib: Some(200),
            markets: vec![Market::OnDemand],
        });
        let params: Vec<(&str, &str)> = pool
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            params,
            [
                ("tier", "gold"),
                ("runway.allowed_instance_types", "c7g.*, m7g.large"),
                ("runway.allowed_markets", "on-demand"),
                ("runway.max_disk_gib", "200"),
            ]
        );
    }

    #[test]
    fn a_cases_pool_gives_allow_lists_as_fields_and_may_not_set_runway_params() {
        let pool: Pool = serde_json::from_str(
            r#"{"name": "p", "allowed_instance_types": ["t3.*"], "params": {"tier": "a"}}"#,
        )
        .unwrap();
        assert_eq!(
            pool.params,
            [
                ("tier".to_owned(), "a".to_owned()),
                (
                    "runway.allowed_instance_types".to_owned(),
                    "t3.*".to_owned()
                ),
            ]
        );
        let error = serde_json::from_str::<Pool>(
            r#"{"name": "p", "params": {"runway.allowed_images": "ami-1"}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("give the pool's allowed_instance_types"),
            "{error}"
        );
        let unknown = serde_json::from_str::<Pool>(r#"{"name": "p", "colour": "red"}"#);
        assert!(unknown.is_err());
    }
}
