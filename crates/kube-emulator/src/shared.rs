//! What every request handler and pod task shares: the store, the watch fan-out, the runtime.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use crate::config::Auth;
use crate::runtime::PodRuntime;
use crate::store::{Change, Store};

type Kill = Box<dyn FnOnce() + Send>;

pub(crate) struct Shared {
    store: Mutex<Store>,
    pub changes: broadcast::Sender<Arc<Change>>,
    pub runtime: Option<Arc<dyn PodRuntime>>,
    /// The root of the pods' temporary directories.
    pub work_dir: PathBuf,
    pub auth: Auth,
    pub pod_start_delay: Duration,
    requests: Mutex<BTreeMap<String, u64>>,
    /// How to kill each started pod, by uid.
    running: Mutex<HashMap<String, Kill>>,
    /// Pods waiting for a secret (`(namespace, name, uid)`): tried again when secrets change.
    waiting: Mutex<HashSet<(String, String, String)>>,
    /// Flips to true when the emulator stops: open watches end.
    pub stopping: watch::Sender<bool>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn new(
        runtime: Option<Arc<dyn PodRuntime>>,
        work_dir: PathBuf,
        auth: Auth,
        pod_start_delay: Duration,
    ) -> Shared {
        let (changes, _) = broadcast::channel(4096);
        Shared {
            store: Mutex::new(Store::new(changes.clone())),
            changes,
            runtime,
            work_dir,
            auth,
            pod_start_delay,
            requests: Mutex::new(BTreeMap::new()),
            running: Mutex::new(HashMap::new()),
            waiting: Mutex::new(HashSet::new()),
            stopping: watch::Sender::new(false),
        }
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    pub fn count(&self, what: String) {
        *lock(&self.requests).entry(what).or_default() += 1;
    }

    pub fn requests(&self) -> BTreeMap<String, u64> {
        lock(&self.requests).clone()
    }

    pub fn register_kill(&self, uid: &str, kill: Kill) {
        lock(&self.running).insert(uid.to_string(), kill);
    }

    /// Kills a started pod; false when it was not running (or already killed).
    pub fn kill(&self, uid: &str) -> bool {
        let kill = lock(&self.running).remove(uid);
        match kill {
            Some(kill) => {
                kill();
                true
            }
            None => false,
        }
    }

    /// Takes the kill of a pod whose containers exited by themselves; false if it was killed.
    pub fn exited(&self, uid: &str) -> bool {
        lock(&self.running).remove(uid).is_some()
    }

    pub fn kill_all(&self) {
        let all: Vec<Kill> = lock(&self.running).drain().map(|(_, k)| k).collect();
        for kill in all {
            kill();
        }
    }

    pub fn wait_for_secret(&self, namespace: &str, name: &str, uid: &str) {
        lock(&self.waiting).insert((namespace.into(), name.into(), uid.into()));
    }

    /// The pods of `namespace` that waited for a secret (no longer waiting).
    pub fn take_waiting(&self, namespace: &str) -> Vec<(String, String, String)> {
        let mut waiting = lock(&self.waiting);
        let found: Vec<_> = waiting
            .iter()
            .filter(|(ns, _, _)| ns == namespace)
            .cloned()
            .collect();
        for entry in &found {
            waiting.remove(entry);
        }
        found
    }
}
