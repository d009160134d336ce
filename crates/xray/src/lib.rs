//! AWS X-Ray subsegments for runway's calls to other systems.
//!
//! runway's libraries open a span around each call to another system, carrying the
//! OpenTelemetry RPC fields: `rpc.system`, `rpc.service` and `rpc.method`. The AWS SDK for
//! Rust opens such a span for every operation (`DynamoDB.GetItem`, `EC2.RunInstances`, ...);
//! runway's GitHub client opens one per request, and the policy host one per decision.
//! [`XRayLayer`] turns each of those spans into an X-Ray subsegment of the current trace and
//! sends it to the X-Ray daemon over UDP when the span closes, so a job's trace shows where
//! each step spent its time. The libraries know nothing of X-Ray: only the Lambda
//! executable installs the layer.
//!
//! The trace comes from the X-Ray trace header of the invocation (`_X_AMZN_TRACE_ID`, which
//! the Lambda runtime sets before each invocation): subsegments hang off the function's
//! segment, and nested calls off the call that made them. Unsampled traces send nothing.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The environment variable holding the daemon's address (`127.0.0.1:2000`, or
/// `tcp:127.0.0.1:2000 udp:127.0.0.1:2000`), set by Lambda when active tracing is on.
pub const DAEMON_ADDRESS_ENV: &str = "AWS_XRAY_DAEMON_ADDRESS";
/// The environment variable holding the current trace header.
pub const TRACE_HEADER_ENV: &str = "_X_AMZN_TRACE_ID";

/// The field whose presence makes a span a call to another system.
const SERVICE_FIELD: &str = "rpc.service";

/// Whether a span describes a call to another system (it has an `rpc.service` field).
pub fn is_remote_call(metadata: &Metadata<'_>) -> bool {
    metadata.is_span() && metadata.fields().field(SERVICE_FIELD).is_some()
}

/// An X-Ray trace header: `Root=1-...;Parent=...;Sampled=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeader {
    pub root: String,
    /// The segment (or subsegment) the next subsegments belong to.
    pub parent: String,
    pub sampled: bool,
}

impl TraceHeader {
    /// Reads a header; `None` when it lacks a root or a parent.
    pub fn parse(text: &str) -> Option<TraceHeader> {
        let (mut root, mut parent, mut sampled) = (None, None, false);
        for part in text.split(';') {
            match part.trim().split_once('=') {
                Some(("Root", value)) if !value.is_empty() => root = Some(value.to_owned()),
                Some(("Parent", value)) if !value.is_empty() => parent = Some(value.to_owned()),
                Some(("Sampled", value)) => sampled = value == "1",
                _ => {}
            }
        }
        Some(TraceHeader {
            root: root?,
            parent: parent?,
            sampled,
        })
    }
}

/// Where the current trace header is read, at the start of each call.
#[derive(Debug, Clone)]
pub enum TraceSource {
    /// [`TRACE_HEADER_ENV`], as the Lambda runtime sets it for each invocation.
    Environment,
    /// One header for every call (tests, or a process that is one traced request).
    Fixed(TraceHeader),
}

impl TraceSource {
    fn current(&self) -> Option<TraceHeader> {
        match self {
            TraceSource::Environment => std::env::var(TRACE_HEADER_ENV)
                .ok()
                .and_then(|text| TraceHeader::parse(&text)),
            TraceSource::Fixed(header) => Some(header.clone()),
        }
    }
}

/// Why the daemon cannot be reached.
#[derive(Debug)]
pub struct DaemonError(String);

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DaemonError {}

/// The UDP address in a daemon address setting: `host:port`, or the `udp:` part of
/// `tcp:host:port udp:host:port`.
pub fn daemon_address(setting: &str) -> Result<SocketAddr, DaemonError> {
    let setting = setting.trim();
    let udp = setting
        .split_whitespace()
        .find_map(|part| part.strip_prefix("udp:"))
        .unwrap_or(setting);
    udp.to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(|| {
            DaemonError(format!(
                "{DAEMON_ADDRESS_ENV} {setting:?} is not an address: set it to host:port, or \
                 to \"tcp:host:port udp:host:port\""
            ))
        })
}

/// The X-Ray daemon, reached over UDP. A lost datagram loses a subsegment, never a call.
#[derive(Debug)]
pub struct Daemon {
    socket: UdpSocket,
    address: SocketAddr,
}

impl Daemon {
    pub fn new(address: SocketAddr) -> Result<Daemon, DaemonError> {
        let local: SocketAddr = if address.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local)
            .map_err(|error| DaemonError(format!("could not open a UDP socket: {error}")))?;
        socket
            .set_nonblocking(true)
            .map_err(|error| DaemonError(format!("could not set the UDP socket: {error}")))?;
        Ok(Daemon { socket, address })
    }

    /// The daemon [`DAEMON_ADDRESS_ENV`] names, or `None` when it is unset (tracing off).
    pub fn from_env() -> Result<Option<Daemon>, DaemonError> {
        match std::env::var(DAEMON_ADDRESS_ENV) {
            Ok(setting) if !setting.trim().is_empty() => {
                Daemon::new(daemon_address(&setting)?).map(Some)
            }
            _ => Ok(None),
        }
    }

    fn send(&self, document: &Value) {
        let datagram = format!("{{\"format\":\"json\",\"version\":1}}\n{document}");
        // Best effort, as the X-Ray SDKs: a full buffer or an absent daemon drops the record.
        let _ = self.socket.send_to(datagram.as_bytes(), self.address);
    }
}

/// Turns spans of calls to other systems into X-Ray subsegments (see the crate's docs).
/// Install it with [`XRayLayer::filtered`], so that only those spans reach it.
#[derive(Debug)]
pub struct XRayLayer {
    daemon: Daemon,
    traces: TraceSource,
}

impl XRayLayer {
    pub fn new(daemon: Daemon, traces: TraceSource) -> XRayLayer {
        XRayLayer { daemon, traces }
    }

    /// The layer for a Lambda function with active tracing: the daemon from
    /// [`DAEMON_ADDRESS_ENV`], the trace from each invocation's header. `None` when tracing
    /// is off.
    pub fn from_env() -> Result<Option<XRayLayer>, DaemonError> {
        Ok(Daemon::from_env()?.map(|daemon| XRayLayer::new(daemon, TraceSource::Environment)))
    }

    /// The layer behind a filter that lets through only the spans of calls to other systems,
    /// decided once per call site: other spans and events cost it nothing.
    pub fn filtered<S>(self) -> tracing_subscriber::filter::Filtered<XRayLayer, RemoteCalls, S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.with_filter(RemoteCalls)
    }
}

/// The per-layer filter of [`XRayLayer`]: spans with an `rpc.service` field.
#[derive(Debug, Clone, Copy, Default)]
pub struct RemoteCalls;

impl<S> Filter<S> for RemoteCalls {
    fn enabled(&self, metadata: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        is_remote_call(metadata)
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        if is_remote_call(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }
}

/// A call in progress: its subsegment, written when the span closes.
#[derive(Debug)]
struct OpenCall {
    id: String,
    trace_id: String,
    parent_id: String,
    start: f64,
    fields: CallFields,
}

/// What a span says of its call.
#[derive(Debug, Default)]
struct CallFields {
    system: Option<String>,
    service: Option<String>,
    method: Option<String>,
    http_method: Option<String>,
    url: Option<String>,
    status: Option<u64>,
    error: Option<String>,
}

impl Visit for CallFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let slot = match field.name() {
            "rpc.system" => &mut self.system,
            "rpc.service" => &mut self.service,
            "rpc.method" => &mut self.method,
            "http.request.method" => &mut self.http_method,
            "url.full" | "url.path" => &mut self.url,
            "error" | "error.message" => &mut self.error,
            _ => return,
        };
        *slot = Some(value.to_owned());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "http.response.status_code" {
            self.status = Some(value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Ok(value) = u64::try_from(value) {
            self.record_u64(field, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields arrive here; strings recorded with `?` keep their quotes off.
        self.record_str(field, format!("{value:?}").trim_matches('"'));
    }
}

impl CallFields {
    fn subsegment(&self, call: &OpenCall, end: f64) -> Value {
        let aws = self.system.as_deref() == Some("aws-api");
        let mut document = Map::new();
        document.insert(
            "name".into(),
            json!(self.service.as_deref().unwrap_or("remote")),
        );
        document.insert("id".into(), json!(call.id));
        document.insert("trace_id".into(), json!(call.trace_id));
        document.insert("parent_id".into(), json!(call.parent_id));
        document.insert("type".into(), json!("subsegment"));
        document.insert("start_time".into(), json!(call.start));
        document.insert("end_time".into(), json!(end));
        document.insert(
            "namespace".into(),
            json!(if aws { "aws" } else { "remote" }),
        );
        if aws {
            if let Some(operation) = &self.method {
                document.insert("aws".into(), json!({ "operation": operation }));
            }
        } else if let Some(method) = &self.method {
            document.insert("metadata".into(), json!({"rpc": {"method": method}}));
        }
        if self.http_method.is_some() || self.url.is_some() || self.status.is_some() {
            let mut http = Map::new();
            if self.http_method.is_some() || self.url.is_some() {
                http.insert(
                    "request".into(),
                    json!({"method": self.http_method, "url": self.url}),
                );
            }
            if let Some(status) = self.status {
                http.insert("response".into(), json!({ "status": status }));
            }
            document.insert("http".into(), Value::Object(http));
        }
        // X-Ray's three failure kinds: throttled, a client error, a fault of the far side.
        match self.status {
            Some(429) => {
                document.insert("throttle".into(), json!(true));
                document.insert("error".into(), json!(true));
            }
            Some(status) if status >= 500 => {
                document.insert("fault".into(), json!(true));
            }
            Some(status) if status >= 400 => {
                document.insert("error".into(), json!(true));
            }
            _ => {}
        }
        if let Some(message) = &self.error {
            document.insert("fault".into(), json!(true));
            document.insert(
                "cause".into(),
                json!({"exceptions": [{"id": new_id(), "message": message}]}),
            );
        }
        Value::Object(document)
    }
}

fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn epoch_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

impl<S> Layer<S> for XRayLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        let Some(span) = context.span(id) else {
            return;
        };
        // A call made inside another call hangs off it; the first off the function's segment.
        let enclosing = span.scope().skip(1).find_map(|outer| {
            outer
                .extensions()
                .get::<OpenCall>()
                .map(|call| (call.trace_id.clone(), call.id.clone()))
        });
        let (trace_id, parent_id) = match enclosing {
            Some(ids) => ids,
            None => match self.traces.current() {
                Some(header) if header.sampled => (header.root, header.parent),
                _ => return,
            },
        };
        let mut fields = CallFields::default();
        attributes.record(&mut fields);
        span.extensions_mut().insert(OpenCall {
            id: new_id(),
            trace_id,
            parent_id,
            start: epoch_seconds(),
            fields,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, context: Context<'_, S>) {
        if let Some(span) = context.span(id)
            && let Some(call) = span.extensions_mut().get_mut::<OpenCall>()
        {
            values.record(&mut call.fields);
        }
    }

    fn on_close(&self, id: Id, context: Context<'_, S>) {
        let Some(span) = context.span(&id) else {
            return;
        };
        let Some(call) = span.extensions_mut().remove::<OpenCall>() else {
            return;
        };
        self.daemon
            .send(&call.fields.subsegment(&call, epoch_seconds()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lambda_trace_header_is_read_with_its_sampling_decision() {
        let header = TraceHeader::parse(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .unwrap();
        assert_eq!(header.root, "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(header.parent, "53995c3f42cd8ad8");
        assert!(header.sampled);
        let unsampled = TraceHeader::parse("Root=1-a-b;Parent=c;Sampled=0").unwrap();
        assert!(!unsampled.sampled);
        assert!(
            !TraceHeader::parse("Root=1-a-b;Parent=c;Sampled=?")
                .unwrap()
                .sampled
        );
        assert_eq!(TraceHeader::parse("Root=1-a-b;Sampled=1"), None);
        assert_eq!(TraceHeader::parse(""), None);
    }

    #[test]
    fn the_daemon_address_is_read_in_both_forms_and_a_bad_one_says_what_to_set() {
        assert_eq!(
            daemon_address("169.254.79.129:2000").unwrap(),
            "169.254.79.129:2000".parse().unwrap()
        );
        assert_eq!(
            daemon_address("tcp:127.0.0.1:2000 udp:127.0.0.2:2001").unwrap(),
            "127.0.0.2:2001".parse().unwrap()
        );
        let error = daemon_address("nowhere").unwrap_err().to_string();
        assert!(error.contains("host:port"), "{error}");
    }
}
