//! The HTTP side: discovery, the core `v1` resources with watch, and the `/_emulator` control
//! API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::config::Auth;
use crate::eks_token;
use crate::pods;
use crate::selector::{FieldSelector, LabelSelector};
use crate::shared::Shared;
use crate::status::{ApiError, Kind};
use crate::store::{self, Change, EventType, Selection};
use crate::table::{self, Include};

/// How often a watch that allows bookmarks gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(2);

/// The version `/version` reports (the API the emulator follows).
pub const SERVER_VERSION: &str = "v1.32.0";

type AppState = Arc<Shared>;
type Params = Query<HashMap<String, String>>;

pub(crate) fn router(shared: AppState) -> Router {
    let api = Router::new()
        .route("/version", get(version))
        .route("/api", get(api_versions))
        .route("/api/v1", get(api_resources))
        .route("/apis", get(api_groups))
        .route("/openapi/v3", get(openapi_root))
        .route("/openapi/v3/api/v1", get(openapi_core))
        .route("/healthz", get(ok))
        .route("/livez", get(ok))
        .route("/readyz", get(ok))
        .route("/api/v1/namespaces", get(namespaces).post(namespaces))
        .route(
            "/api/v1/namespaces/{name}",
            get(namespace)
                .put(namespace)
                .patch(namespace)
                .delete(namespace),
        )
        .route(
            "/api/v1/namespaces/{ns}/{resource}",
            get(collection)
                .post(collection)
                .delete(collection)
                .put(collection)
                .patch(collection),
        )
        .route(
            "/api/v1/namespaces/{ns}/{resource}/{name}",
            get(item).put(item).patch(item).delete(item),
        )
        .route(
            "/api/v1/namespaces/{ns}/{resource}/{name}/{sub}",
            get(subresource).put(subresource).patch(subresource),
        )
        .route("/api/v1/{resource}", get(all_namespaces))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), gate));
    Router::new()
        .merge(api)
        .nest("/_emulator", control_router())
        .with_state(shared)
}

pub(crate) fn json_response(code: StatusCode, body: &Value) -> Response {
    let mut response = (code, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn ok_json(body: &Value) -> Response {
    json_response(StatusCode::OK, body)
}

async fn not_found() -> Response {
    ApiError {
        details: Some(json!({})),
        ..ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }
    .into_response()
}

async fn ok() -> &'static str {
    "ok"
}

/// Authentication, then counting (as `verb resource`) and logging.
async fn gate(State(shared): State<AppState>, request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(why) = authenticate(&shared.auth, authorization) {
        tracing::info!(path = %request.uri().path(), %why, "refused");
        return ApiError::unauthorized().into_response();
    }
    let what = describe(
        request.method(),
        request.uri().path(),
        request.uri().query().unwrap_or(""),
    );
    shared.count(what.clone());
    let response = next.run(request).await;
    tracing::debug!(%what, status = %response.status(), "served");
    response
}

fn authenticate(auth: &Auth, authorization: Option<&str>) -> Result<(), String> {
    let token = authorization
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match auth {
        Auth::None => Ok(()),
        Auth::Bearer(want) => match token {
            Some(token) if token == want => Ok(()),
            Some(_) => Err("wrong bearer token".into()),
            None => Err("no bearer token".into()),
        },
        Auth::EksToken { .. } => {
            let token = token.ok_or("no bearer token")?;
            eks_token::check_eks_token(token, chrono::Utc::now())
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    }
}

/// `list pods`, `watch secrets`, `create pods`, `get pods/status`, `get version`...
pub(crate) fn describe(method: &Method, path: &str, query: &str) -> String {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let watch = query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    // (resource, has name, subresource)
    let target = match parts.as_slice() {
        ["api", "v1", "namespaces"] => Some(("namespaces", false, None)),
        ["api", "v1", "namespaces", _] => Some(("namespaces", true, None)),
        ["api", "v1", "namespaces", _, "status"] => Some(("namespaces", true, Some("status"))),
        ["api", "v1", "namespaces", _, resource] => Some((*resource, false, None)),
        ["api", "v1", "namespaces", _, resource, _] => Some((*resource, true, None)),
        ["api", "v1", "namespaces", _, resource, _, sub] => Some((*resource, true, Some(*sub))),
        ["api", "v1", resource] => Some((*resource, false, None)),
        _ => None,
    };
    let Some((resource, named, sub)) = target else {
        return format!("{} {}", method.as_str().to_lowercase(), path);
    };
    let verb = match (method.as_str(), named) {
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        (other, _) => return format!("{} {resource}", other.to_lowercase()),
    };
    match sub {
        Some(sub) => format!("{verb} {resource}/{sub}"),
        None => format!("{verb} {resource}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Discovery

async fn version() -> Response {
    ok_json(&json!({
        "major": "1",
        "minor": "32",
        "gitVersion": SERVER_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }))
}

async fn api_versions(headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    ok_json(&json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
    }))
}

async fn api_groups() -> Response {
    ok_json(&json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}))
}

/// The `APIResourceList` of core `v1`: what kubectl and kube-rs discover.
pub fn api_resource_list() -> Value {
    let full = [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ];
    let status_verbs = ["get", "patch", "update"];
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "namespaces", "singularName": "namespace", "namespaced": false,
             "kind": "Namespace", "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
             "shortNames": ["ns"]},
            {"name": "namespaces/status", "singularName": "", "namespaced": false,
             "kind": "Namespace", "verbs": status_verbs},
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
             "verbs": full, "shortNames": ["po"], "categories": ["all"]},
            {"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod",
             "verbs": ["get"]},
            {"name": "pods/status", "singularName": "", "namespaced": true, "kind": "Pod",
             "verbs": status_verbs},
            {"name": "secrets", "singularName": "secret", "namespaced": true, "kind": "Secret",
             "verbs": full},
        ],
    })
}

async fn api_resources() -> Response {
    ok_json(&api_resource_list())
}

/// What the emulator's OpenAPI v3 document for core `v1` describes: only the `PATCH`
/// operations and their `fieldValidation` parameter. kubectl reads nothing else from it: it
/// tells kubectl the server validates fields itself, so `kubectl create -f` sends
/// `fieldValidation=Strict` instead of validating against a full schema.
const OPENAPI_HASH: &str = "kube-emulator-1";

async fn openapi_root() -> Response {
    ok_json(&json!({
        "paths": {
            "api/v1": {"serverRelativeURL": format!("/openapi/v3/api/v1?hash={OPENAPI_HASH}")},
        },
    }))
}

async fn openapi_core() -> Response {
    let mut paths = serde_json::Map::new();
    for (path, kind) in [
        ("/api/v1/namespaces/{name}", "Namespace"),
        ("/api/v1/namespaces/{namespace}/pods/{name}", "Pod"),
        ("/api/v1/namespaces/{namespace}/secrets/{name}", "Secret"),
    ] {
        paths.insert(
            path.to_string(),
            json!({
                "patch": {
                    "operationId": format!("patchCoreV1{kind}"),
                    "parameters": [{
                        "name": "fieldValidation",
                        "in": "query",
                        "schema": {"type": "string", "uniqueItems": true},
                    }],
                    "responses": {"200": {"description": "OK"}},
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": kind},
                },
            }),
        );
    }
    ok_json(&json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": SERVER_VERSION},
        "paths": paths,
        "components": {},
    }))
}

// ---------------------------------------------------------------------------------------------
// Resources

/// What a request is about, from its path.
#[derive(Debug, Clone)]
struct Target {
    kind: Kind,
    /// `None` for cluster-scoped kinds and the all-namespaces list.
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

struct Call {
    method: Method,
    headers: HeaderMap,
    params: HashMap<String, String>,
    body: Bytes,
}

async fn namespaces(
    State(shared): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Query(params): Params,
    body: Bytes,
) -> Response {
    let target = Target {
        kind: Kind::Namespace,
        namespace: None,
        name: None,
        sub: None,
    };
    serve(
        shared,
        target,
        Call {
            method,
            headers,
            params,
            body,
        },
    )
    .await
}

async fn namespace(
    State(shared): State<AppState>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
    Query(params): Params,
    body: Bytes,
) -> Response {
    let target = Target {
        kind: Kind::Namespace,
        namespace: None,
        name: Some(name),
        sub: None,
    };
    serve(
        shared,
        target,
        Call {
            method,
            headers,
            params,
            body,
        },
    )
    .await
}

async fn collection(
    State(shared): State<AppState>,
    Path((ns, resource)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    Query(params): Params,
    body: Bytes,
) -> Response {
    let call = Call {
        method,
        headers,
        params,
        body,
    };
    // `/api/v1/namespaces/{name}/status` shares the path's shape.
    if resource == "status" {
        let target = Target {
            kind: Kind::Namespace,
            namespace: None,
            name: Some(ns),
            sub: Some(resource),
        };
        return serve(shared, target, call).await;
    }
    let Some(kind) = Kind::from_resource(&resource).filter(|k| k.namespaced()) else {
        return not_found().await;
    };
    let target = Target {
        kind,
        namespace: Some(ns),
        name: None,
        sub: None,
    };
    serve(shared, target, call).await
}

async fn item(
    State(shared): State<AppState>,
    Path((ns, resource, name)): Path<(String, String, String)>,
    method: Method,
    headers: HeaderMap,
    Query(params): Params,
    body: Bytes,
) -> Response {
    let Some(kind) = Kind::from_resource(&resource).filter(|k| k.namespaced()) else {
        return not_found().await;
    };
    let target = Target {
        kind,
        namespace: Some(ns),
        name: Some(name),
        sub: None,
    };
    serve(
        shared,
        target,
        Call {
            method,
            headers,
            params,
            body,
        },
    )
    .await
}

async fn subresource(
    State(shared): State<AppState>,
    Path((ns, resource, name, sub)): Path<(String, String, String, String)>,
    method: Method,
    headers: HeaderMap,
    Query(params): Params,
    body: Bytes,
) -> Response {
    let kind = Kind::from_resource(&resource).filter(|k| k.namespaced());
    let supported = match (kind, sub.as_str()) {
        (Some(Kind::Pod), "status") => true,
        (Some(Kind::Pod), "log") => method == Method::GET,
        _ => false,
    };
    let Some(kind) = kind.filter(|_| supported) else {
        return not_found().await;
    };
    let target = Target {
        kind,
        namespace: Some(ns),
        name: Some(name),
        sub: Some(sub),
    };
    serve(
        shared,
        target,
        Call {
            method,
            headers,
            params,
            body,
        },
    )
    .await
}

async fn all_namespaces(
    State(shared): State<AppState>,
    Path(resource): Path<String>,
    method: Method,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let Some(kind) = Kind::from_resource(&resource).filter(|k| k.namespaced()) else {
        return not_found().await;
    };
    let target = Target {
        kind,
        namespace: None,
        name: None,
        sub: None,
    };
    let call = Call {
        method,
        headers,
        params,
        body: Bytes::new(),
    };
    serve(shared, target, call).await
}

async fn serve(shared: AppState, target: Target, call: Call) -> Response {
    match serve_inner(&shared, target, call).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|accept| accept.split(',').next())
        .is_some_and(|first| first.contains("as=Table"))
}

fn is_watch(params: &HashMap<String, String>) -> bool {
    matches!(params.get("watch").map(String::as_str), Some("true" | "1"))
}

fn selection(
    kind: Kind,
    namespace: Option<String>,
    params: &HashMap<String, String>,
) -> Result<Selection, ApiError> {
    let labels = LabelSelector::parse(params.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let fields = FieldSelector::parse(
        params.get("fieldSelector").map_or("", String::as_str),
        kind.fields(),
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Selection {
        namespace,
        labels,
        fields,
    })
}

fn parse_body(call: &Call) -> Result<Value, ApiError> {
    let content_type = call
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if content_type.starts_with("application/apply-patch+yaml") {
        return serde_yaml::from_slice(&call.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")));
    }
    serde_json::from_slice(&call.body).map_err(|e| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type JSON): {e}"
        ))
    })
}

fn list_body(kind: Kind, mut items: Vec<Value>, resource_version: u64) -> Value {
    // Items of a list carry no kind or apiVersion, as the API server sends them.
    for item in &mut items {
        if let Some(object) = item.as_object_mut() {
            object.remove("kind");
            object.remove("apiVersion");
        }
    }
    json!({
        "kind": format!("{}List", kind.kind()),
        "apiVersion": "v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "items": items,
    })
}

async fn serve_inner(shared: &AppState, target: Target, call: Call) -> Result<Response, ApiError> {
    let kind = target.kind;
    let ns = target.namespace.clone().unwrap_or_default();
    let table = wants_table(&call.headers)
        .then(|| Include::parse(call.params.get("includeObject").map(String::as_str)));
    match (&call.method, &target.name) {
        (&Method::GET, None) => {
            let selection = selection(kind, target.namespace.clone(), &call.params)?;
            if is_watch(&call.params) {
                return watch(shared.clone(), kind, selection, &call.params, table);
            }
            let (items, rv) = {
                let store = shared.store();
                (store.list(kind, &selection), store.resource_version())
            };
            Ok(match table {
                Some(include) => {
                    ok_json(&table::table(kind, &items, &rv.to_string(), include, true))
                }
                None => ok_json(&list_body(kind, items, rv)),
            })
        }
        (&Method::POST, None) => {
            let body = parse_body(&call)?;
            let created = shared.store().create(kind, &ns, body)?;
            after_write(shared, kind, &created, true);
            Ok(json_response(StatusCode::CREATED, &created))
        }
        (&Method::DELETE, None) => {
            let selection = selection(kind, target.namespace.clone(), &call.params)?;
            let (deleted, rv) = {
                let mut store = shared.store();
                let mut deleted = Vec::new();
                for object in store.list(kind, &selection) {
                    deleted.push(store.delete(kind, &ns, store::name_of(&object))?);
                }
                (deleted, store.resource_version())
            };
            for object in &deleted {
                after_delete(shared, kind, object);
            }
            Ok(ok_json(&list_body(kind, deleted, rv)))
        }
        (_, None) => Err(ApiError::method_not_allowed()),
        (method, Some(name)) => {
            let status_only = target.sub.as_deref() == Some("status");
            match *method {
                Method::GET if target.sub.as_deref() == Some("log") => {
                    pod_log(shared, &ns, name, &call.params)
                }
                Method::GET => {
                    let object = shared.store().require(kind, &ns, name)?;
                    Ok(match table {
                        Some(include) => {
                            let rv = object["metadata"]["resourceVersion"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string();
                            ok_json(&table::table(kind, &[object], &rv, include, true))
                        }
                        None => ok_json(&object),
                    })
                }
                Method::PUT => {
                    let body = parse_body(&call)?;
                    let updated = shared.store().replace(kind, &ns, name, body, status_only)?;
                    after_write(shared, kind, &updated, false);
                    Ok(ok_json(&updated))
                }
                Method::PATCH => {
                    let (updated, created) = patch(shared, &target, name, &call, status_only)?;
                    after_write(shared, kind, &updated, created);
                    if created {
                        return Ok(json_response(StatusCode::CREATED, &updated));
                    }
                    Ok(ok_json(&updated))
                }
                Method::DELETE => {
                    let deleted = shared.store().delete(kind, &ns, name)?;
                    after_delete(shared, kind, &deleted);
                    Ok(match kind {
                        // Secrets answer with a Status, pods and namespaces with the object.
                        Kind::Secret => ok_json(&json!({
                            "kind": "Status",
                            "apiVersion": "v1",
                            "metadata": {},
                            "status": "Success",
                            "details": {
                                "name": name,
                                "kind": kind.resource(),
                                "uid": deleted["metadata"]["uid"],
                            },
                        })),
                        _ => ok_json(&deleted),
                    })
                }
                _ => Err(ApiError::method_not_allowed()),
            }
        }
    }
}

/// Applies a patch; `true` when a server-side apply created the object.
fn patch(
    shared: &AppState,
    target: &Target,
    name: &str,
    call: &Call,
    status_only: bool,
) -> Result<(Value, bool), ApiError> {
    let kind = target.kind;
    let ns = target.namespace.clone().unwrap_or_default();
    let content_type = call
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = parse_body(call)?;
    let mut store = shared.store();
    let ns_key = if kind.namespaced() { ns.as_str() } else { "" };
    let existing = store.get(kind, ns_key, name).cloned();
    let Some(mut object) = existing else {
        if content_type.starts_with("application/apply-patch") && !status_only {
            let mut body = body;
            body["metadata"]["name"] = json!(name);
            return Ok((store.create(kind, &ns, body)?, true));
        }
        return Err(ApiError::not_found(kind, name));
    };
    let stored_rv = object["metadata"]["resourceVersion"].clone();
    if content_type.starts_with("application/json-patch+json") {
        store::json_patch(&mut object, &body)?;
    } else if content_type.starts_with("application/merge-patch+json")
        || content_type.starts_with("application/strategic-merge-patch+json")
        || content_type.starts_with("application/apply-patch")
    {
        store::merge_patch(&mut object, &body);
    } else {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"
            ),
        ));
    }
    // A resourceVersion in the patch is a precondition; none means "whatever is stored".
    if object["metadata"]["resourceVersion"] == Value::Null {
        object["metadata"]["resourceVersion"] = stored_rv;
    }
    Ok((store.replace(kind, &ns, name, object, status_only)?, false))
}

/// What follows a create or update: a new pod starts; a secret may unblock waiting pods.
fn after_write(shared: &AppState, kind: Kind, object: &Value, created: bool) {
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
    match kind {
        Kind::Pod if created => pods::spawn_launch(
            shared.clone(),
            namespace.to_string(),
            store::name_of(object).to_string(),
            object["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ),
        Kind::Secret => {
            for (ns, name, uid) in shared.take_waiting(namespace) {
                pods::spawn_launch(shared.clone(), ns, name, uid);
            }
        }
        _ => {}
    }
}

/// What follows a delete: a pod's containers are killed and its files removed; a namespace
/// takes its objects with it.
pub(crate) fn after_delete(shared: &Shared, kind: Kind, object: &Value) {
    match kind {
        Kind::Pod => {
            let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
            let name = store::name_of(object);
            let uid = object["metadata"]["uid"].as_str().unwrap_or_default();
            shared.kill(uid);
            let dir = pods::pod_dir(&shared.work_dir, namespace, name, uid);
            if let Err(error) = std::fs::remove_dir_all(&dir)
                && error.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(dir = %dir.display(), %error, "cannot remove a pod's files");
            }
        }
        Kind::Namespace => {
            let namespace = store::name_of(object).to_string();
            let mut deleted = Vec::new();
            {
                let mut store = shared.store();
                for inner in [Kind::Pod, Kind::Secret] {
                    let selection = Selection {
                        namespace: Some(namespace.clone()),
                        ..Selection::default()
                    };
                    for object in store.list(inner, &selection) {
                        if let Ok(gone) = store.delete(inner, &namespace, store::name_of(&object)) {
                            deleted.push((inner, gone));
                        }
                    }
                }
            }
            for (inner, object) in deleted {
                after_delete(shared, inner, &object);
            }
        }
        Kind::Secret => {}
    }
}

fn pod_log(
    shared: &AppState,
    namespace: &str,
    name: &str,
    params: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let pod = shared.store().require(Kind::Pod, namespace, name)?;
    let container = match params.get("container") {
        Some(container) => container.clone(),
        None => pod["spec"]["containers"][0]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    };
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    let dir = pods::pod_dir(&shared.work_dir, namespace, name, uid);
    let text = std::fs::read(pods::log_path(&dir, &container)).unwrap_or_default();
    let mut response = (StatusCode::OK, text).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// Watch

/// How a change looks to a watch with a selection: a modification that moves an object into
/// or out of the selection is seen as its addition or deletion.
fn seen_as(change: &Change, selection: &Selection) -> Option<EventType> {
    let now = selection.matches(&change.object);
    match change.event_type {
        EventType::Modified => {
            let before = change.old.as_ref().is_some_and(|o| selection.matches(o));
            match (before, now) {
                (true, true) => Some(EventType::Modified),
                (false, true) => Some(EventType::Added),
                (true, false) => Some(EventType::Deleted),
                (false, false) => None,
            }
        }
        other => now.then_some(other),
    }
}

struct WatchEvent {
    event_type: &'static str,
    object: Value,
}

fn encode(kind: Kind, event: WatchEvent, table: Option<Include>, first: bool) -> Bytes {
    let object = match table {
        Some(include) if event.event_type != "ERROR" && event.event_type != "BOOKMARK" => {
            let rv = event.object["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            table::table(kind, &[event.object], &rv, include, first)
        }
        _ => event.object,
    };
    let mut line = json!({"type": event.event_type, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn watch(
    shared: AppState,
    kind: Kind,
    selection: Selection,
    params: &HashMap<String, String>,
    table: Option<Include>,
) -> Result<Response, ApiError> {
    let since = match params.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?,
        ),
    };
    let bookmarks = matches!(
        params.get("allowWatchBookmarks").map(String::as_str),
        Some("true" | "1")
    );
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map(Duration::from_secs);
    // Subscribe before reading the store, so no change falls between the two.
    let mut live = shared.changes.subscribe();
    let mut initial: Vec<WatchEvent> = Vec::new();
    let mut last_rv;
    {
        let store = shared.store();
        last_rv = store.resource_version();
        match since {
            None => {
                for object in store.list(kind, &selection) {
                    initial.push(WatchEvent {
                        event_type: "ADDED",
                        object,
                    });
                }
            }
            Some(rv) => match store.changes_since(rv) {
                Some(changes) => {
                    for change in changes.iter().filter(|c| c.kind == kind) {
                        if let Some(seen) = seen_as(change, &selection) {
                            initial.push(WatchEvent {
                                event_type: seen.as_str(),
                                object: change.object.clone(),
                            });
                        }
                    }
                }
                None => {
                    let error = ApiError::gone(format!(
                        "too old resource version: {rv} ({})",
                        store.resource_version()
                    ));
                    initial.push(WatchEvent {
                        event_type: "ERROR",
                        object: error.to_status(),
                    });
                    last_rv = u64::MAX;
                }
            },
        }
    }
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut stopping = shared.stopping.subscribe();
    tokio::spawn(async move {
        let mut first = true;
        for event in initial {
            if tx.send(encode(kind, event, table, first)).await.is_err() {
                return;
            }
            first = false;
        }
        if last_rv == u64::MAX {
            return;
        }
        let deadline = tokio::time::sleep(timeout.unwrap_or(Duration::from_secs(365 * 86400)));
        tokio::pin!(deadline);
        let mut bookmark = tokio::time::interval(BOOKMARK_INTERVAL);
        bookmark.tick().await;
        loop {
            let event = tokio::select! {
                _ = &mut deadline => return,
                _ = stopping.changed() => return,
                _ = tx.closed() => return,
                _ = bookmark.tick(), if bookmarks && table.is_none() => WatchEvent {
                    event_type: "BOOKMARK",
                    object: json!({
                        "kind": kind.kind(),
                        "apiVersion": "v1",
                        "metadata": {"resourceVersion": last_rv.to_string()},
                    }),
                },
                received = live.recv() => match received {
                    Ok(change) => {
                        if change.resource_version <= last_rv || change.kind != kind {
                            continue;
                        }
                        last_rv = change.resource_version;
                        match seen_as(&change, &selection) {
                            Some(seen) => WatchEvent {
                                event_type: seen.as_str(),
                                object: change.object.clone(),
                            },
                            None => continue,
                        }
                    }
                    // Too slow a reader: end the watch; the client lists again.
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if tx.send(encode(kind, event, table, first)).await.is_err() {
                return;
            }
            first = false;
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, std::convert::Infallible>(bytes), rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// Control API

fn control_router() -> Router<AppState> {
    Router::new()
        .route("/events", get(control_events))
        .route("/requests", get(control_requests))
        .route("/pods/{ns}/{name}/phase", post(control_phase))
}

/// Every change so far (the retained history), oldest first.
async fn control_events(State(shared): State<AppState>) -> Response {
    let events: Vec<Value> = shared
        .store()
        .history()
        .map(|c| crate::change_view(c).to_json())
        .collect();
    ok_json(&json!({"events": events}))
}

async fn control_requests(State(shared): State<AppState>) -> Response {
    ok_json(&json!(shared.requests()))
}

#[derive(serde::Deserialize)]
struct PhaseBody {
    phase: String,
    #[serde(default, rename = "exitCode")]
    exit_code: Option<i32>,
}

async fn control_phase(
    State(shared): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let body: PhaseBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
    };
    match crate::set_phase(&shared, &ns, &name, &body.phase, body.exit_code) {
        Ok(pod) => ok_json(&pod),
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_requests() {
        let get = Method::GET;
        assert_eq!(
            describe(&get, "/api/v1/namespaces/default/pods", ""),
            "list pods"
        );
        assert_eq!(
            describe(&get, "/api/v1/namespaces/default/pods", "watch=1&x=y"),
            "watch pods"
        );
        assert_eq!(describe(&get, "/api/v1/pods", "watch=true"), "watch pods");
        assert_eq!(
            describe(&Method::PATCH, "/api/v1/namespaces/a/pods/p/status", ""),
            "patch pods/status"
        );
        assert_eq!(
            describe(&Method::POST, "/api/v1/namespaces", ""),
            "create namespaces"
        );
        assert_eq!(
            describe(&Method::DELETE, "/api/v1/namespaces/x", ""),
            "delete namespaces"
        );
        assert_eq!(describe(&get, "/version", ""), "get /version");
    }

    #[test]
    fn bearer_auth() {
        let auth = Auth::Bearer("t".into());
        assert!(authenticate(&auth, Some("Bearer t")).is_ok());
        assert!(authenticate(&auth, Some("Bearer u")).is_err());
        assert!(authenticate(&auth, None).is_err());
        assert!(authenticate(&Auth::None, None).is_ok());
    }
}
