//! The emulator's shared state: the world behind a lock, the change signal runners and
//! webhook lanes wait on, and what every request handler reads (clock, URLs, App).

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use runway_clock::SharedClock;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::api::{ApiAccounting, ApiUsage, RateView};
use crate::config::{AppConfig, WebhookTarget};
use crate::jit::JitConfig;
use crate::matching::Scope;
use crate::payloads::{self, Urls};
use crate::reach::Caller;
use crate::releases::Releases;
use crate::state::{
    Delivery, DeliveryOutcome, IssuedToken, Outgoing, SendResult, World, WorldError,
};

pub(crate) struct Shared {
    pub(crate) world: Mutex<World>,
    pub(crate) changes: watch::Sender<u64>,
    pub clock: SharedClock,
    pub urls: Urls,
    /// The App runway authenticates as; replaced when a manifest becomes a new App.
    app: std::sync::RwLock<AppConfig>,
    pub(crate) tokens: Vec<String>,
    pub(crate) webhook: Mutex<Option<WebhookTarget>>,
    /// Where webhooks go in this process, when set (instead of the target's URL).
    pub(crate) receiver: Mutex<Option<axum::Router>>,
    pub(crate) outbox: mpsc::UnboundedSender<Outgoing>,
    /// When the emulated repositories were "created".
    pub(crate) epoch: DateTime<Utc>,
    /// The rate limit and request counts (apart from the world: counting a request is no
    /// change runners or webhooks wait for).
    pub(crate) api: Mutex<ApiAccounting>,
    /// Published releases (apart from the world: no runner or webhook waits on them).
    pub(crate) releases: Mutex<Releases>,
    /// App manifests confirmed and waiting for their conversion.
    pub(crate) manifests: Mutex<crate::manifest::Manifests>,
}

impl Shared {
    pub fn new(
        world: World,
        clock: SharedClock,
        urls: Urls,
        app: AppConfig,
        tokens: Vec<String>,
        webhook: Option<WebhookTarget>,
        outbox: mpsc::UnboundedSender<Outgoing>,
    ) -> Shared {
        let epoch = clock.now();
        Shared {
            world: Mutex::new(world),
            changes: watch::Sender::new(0),
            clock,
            urls,
            app: std::sync::RwLock::new(app),
            tokens,
            webhook: Mutex::new(webhook),
            receiver: Mutex::new(None),
            outbox,
            epoch,
            api: Mutex::new(ApiAccounting::new(epoch)),
            releases: Mutex::new(Releases::default()),
            manifests: Mutex::new(crate::manifest::Manifests::default()),
        }
    }

    pub(crate) fn releases(&self) -> MutexGuard<'_, Releases> {
        self.releases
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The App as it is now (a copy: a manifest conversion may replace it meanwhile).
    pub fn app(&self) -> AppConfig {
        self.app
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Makes `app` the App runway authenticates as (its installations stay).
    pub fn replace_app(&self, app: AppConfig) {
        *self
            .app
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = app;
    }

    pub(crate) fn api(&self) -> MutexGuard<'_, ApiAccounting> {
        self.api
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn api_usage(&self) -> ApiUsage {
        self.api().usage()
    }

    pub fn rate_limit(&self) -> RateView {
        let now = self.clock.now();
        self.api().rate(now)
    }

    pub fn set_rate_limit(&self, limit: u64, remaining: u64) {
        let now = self.clock.now();
        self.api().set(now, limit, remaining);
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.world
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads the world without changing it.
    pub fn read<T>(&self, f: impl FnOnce(&World, DateTime<Utc>) -> T) -> T {
        let now = self.clock.now();
        let world = self.lock();
        f(&world, now)
    }

    /// Changes the world, turns job changes into webhooks (in order) and wakes waiters.
    pub fn update<T>(&self, f: impl FnOnce(&mut World, DateTime<Utc>) -> T) -> T {
        let now = self.clock.now();
        let mut world = self.lock();
        let out = f(&mut world, now);
        self.queue_webhooks(&mut world);
        drop(world);
        self.changes
            .send_modify(|version| *version = version.wrapping_add(1));
        out
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub fn webhook_target(&self) -> Option<WebhookTarget> {
        self.webhook
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn set_webhook_target(&self, target: Option<WebhookTarget>) {
        *self
            .webhook
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = target;
    }

    pub fn webhook_receiver(&self) -> Option<axum::Router> {
        self.receiver
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn set_webhook_receiver(&self, receiver: Option<axum::Router>) {
        *self
            .receiver
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = receiver;
    }

    pub(crate) fn queue_webhooks(&self, world: &mut World) {
        let events = std::mem::take(&mut world.pending_events);
        let has_target = self.webhook_target().is_some();
        for (job_id, event) in events {
            let Some(job) = world.jobs.get(&job_id) else {
                continue;
            };
            let payload = payloads::workflow_job_event(
                world,
                job,
                event,
                &self.urls,
                self.installation_of_repository(&job.repository),
                self.epoch,
            );
            let body = serde_json::to_vec(&payload).unwrap_or_default();
            let sequence = world.next_sequence();
            let guid = uuid::Uuid::new_v4().to_string();
            let (copies, outcome) = if !has_target {
                (0, DeliveryOutcome::Skipped)
            } else if let Some(left) = world
                .faults
                .drop_webhooks_by_action
                .get_mut(event.action())
                .filter(|left| **left > 0)
            {
                *left -= 1;
                (0, DeliveryOutcome::Dropped)
            } else if world.faults.drop_webhooks > 0
                && world
                    .faults
                    .drop_webhooks_action
                    .as_deref()
                    .is_none_or(|action| action == event.action())
            {
                world.faults.drop_webhooks -= 1;
                (0, DeliveryOutcome::Dropped)
            } else if world.faults.duplicate_webhooks > 0 {
                world.faults.duplicate_webhooks -= 1;
                (2, DeliveryOutcome::Pending)
            } else {
                (1, DeliveryOutcome::Pending)
            };
            world.record_delivery(Delivery {
                sequence,
                guid: guid.clone(),
                event: "workflow_job".to_string(),
                action: event.action().to_string(),
                job_id,
                duplicate: false,
                outcome,
                response_status: None,
                error: None,
                payload,
                delivered_at: None,
            });
            if copies > 0 {
                let outgoing = Outgoing {
                    sequence,
                    guid,
                    action: event.action().to_string(),
                    job_id,
                    copies,
                    body,
                };
                if self.outbox.send(outgoing).is_err() {
                    tracing::warn!("the webhook sender has stopped; a webhook was not sent");
                }
            }
        }
    }

    /// The installation covering the owner of `full_name` (`owner/name`): the one a webhook
    /// about the repository names.
    fn installation_of_repository(&self, full_name: &str) -> u64 {
        let owner = full_name
            .split_once('/')
            .map_or(full_name, |(owner, _)| owner);
        self.app().installation_of(owner)
    }

    pub fn record_delivery(&self, outgoing: &Outgoing, duplicate: bool, result: SendResult) {
        self.update(|world, now| {
            if duplicate {
                // The delivery is among the latest: search from the end.
                let Some(original) = world
                    .deliveries
                    .iter()
                    .rev()
                    .find(|d| d.sequence == outgoing.sequence && !d.duplicate)
                    .cloned()
                else {
                    return;
                };
                let mut copy = Delivery {
                    duplicate: true,
                    outcome: DeliveryOutcome::Pending,
                    response_status: None,
                    error: None,
                    ..original
                };
                copy.complete(result);
                copy.delivered_at = Some(now);
                world.record_delivery(copy);
            } else if let Some(delivery) = world
                .deliveries
                .iter_mut()
                .rev()
                .find(|d| d.sequence == outgoing.sequence && !d.duplicate)
            {
                delivery.complete(result);
                delivery.delivered_at = Some(now);
            }
        });
    }

    /// Waits until `ready` answers `Some`, the world changes being the only wake-up, or until
    /// `wait` has passed on the emulator's clock.
    pub async fn wait_for<T>(
        &self,
        wait: Duration,
        mut ready: impl FnMut(&World, DateTime<Utc>) -> Option<T>,
    ) -> Option<T> {
        let mut changes = self.subscribe();
        let deadline = self.clock.sleep(wait);
        tokio::pin!(deadline);
        loop {
            changes.borrow_and_update();
            if let Some(value) = self.read(&mut ready) {
                return Some(value);
            }
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = &mut deadline => return self.read(&mut ready),
            }
        }
    }
}

impl Shared {
    /// Registers a JIT runner and writes its config.
    pub fn generate_jit(
        &self,
        scope: Scope,
        name: &str,
        group_id: u64,
        labels: &[String],
        work_folder: &str,
    ) -> Result<(Value, JitConfig), WorldError> {
        let credential = random_token("runner_", 32);
        let (runner_json, label_names, runner_id, scope) = self.update(|world, now| {
            let scope = world.canonical_scope(&scope)?;
            let id = world.add_jit_runner(scope, name, group_id, labels, credential.clone())?;
            let runner = world.runners.get(&id).ok_or(WorldError::RunnerGone(id))?;
            Ok::<_, WorldError>((
                payloads::runner(runner, now, world),
                runner.label_names(),
                id,
                runner.scope.clone(),
            ))
        })?;
        let config = JitConfig {
            runner_id,
            runner_name: name.to_string(),
            labels: label_names,
            scope,
            url: self.urls.html.clone(),
            runner_endpoint: format!("{}/_runner", self.urls.html),
            credential,
            work_folder: work_folder.to_string(),
        };
        Ok((runner_json, config))
    }

    /// Who `token` speaks for, or `None` when it is refused. A token the emulator issued
    /// speaks for its installation (and is refused once expired, unless every token is
    /// accepted); any other token is a personal access token when `tokens` lists it or is
    /// empty.
    pub(crate) fn caller(&self, token: &str, now: DateTime<Utc>) -> Option<Caller> {
        let issued = self.read(|world, _| world.issued_tokens.get(token).copied());
        let open = self.tokens.is_empty();
        match issued {
            Some(issued) => (issued.expires_at > now || open)
                .then_some(Caller::Installation(issued.installation_id)),
            None => (open || self.tokens.iter().any(|t| t == token)).then_some(Caller::Personal),
        }
    }

    /// Issues an installation token for `installation_id`, valid for an hour.
    pub(crate) fn issue_token(&self, installation_id: u64) -> (String, DateTime<Utc>) {
        let token = random_token("ghs_", 36);
        let expires_at = self.clock.now() + chrono::Duration::hours(1);
        self.update(|world, _| {
            world.issued_tokens.insert(
                token.clone(),
                IssuedToken {
                    expires_at,
                    installation_id,
                },
            );
        });
        (token, expires_at)
    }
}

pub(crate) fn random_token(prefix: &str, length: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..length)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}
