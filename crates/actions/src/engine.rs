//! The worker pool: dedicated threads that each own a QuickJS runtime, a shared queue,
//! and a watchdog that retires a worker stuck past its deadline and starts another.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::cache::ActionCache;
use crate::js::{Deadline, JsWorker};
use crate::run::run_job;
use crate::{EngineError, Failure, Job, Limits, Outcome, Trigger};

/// QuickJS latches the stack top of the thread that creates a runtime and limits its own
/// stack to `js::MAX_STACK_BYTES`; the thread gets far more so Rust frames fit around it.
const WORKER_STACK_BYTES: usize = 8 * 1024 * 1024;
/// How long past its deadline a worker may take before it is given up for stuck (the
/// interrupt handler cannot reach some built-ins, such as huge BigInt arithmetic).
const GRACE: Duration = Duration::from_secs(2);
/// How often the watchdog looks at the workers.
const WATCHDOG_TICK: Duration = Duration::from_millis(100);

enum Task {
    Run(Box<Job>),
    CheckAction(String),
    CheckRule(String),
}

enum TaskResult {
    Outcome(Box<Outcome>),
    Checked(Result<(), String>),
}

struct Envelope {
    task: Task,
    /// Tells the caller a worker took the task (its clock starts now), and which.
    started: oneshot::Sender<Arc<WorkerSlot>>,
    done: oneshot::Sender<TaskResult>,
}

/// One worker thread as the watchdog sees it.
struct WorkerSlot {
    id: usize,
    retired: AtomicBool,
    /// When the current task must be finished by, grace included.
    busy_until: Mutex<Option<Instant>>,
    /// The rule or action running now, to name it if the worker gets stuck.
    running: Mutex<String>,
}

struct Shared {
    limits: Limits,
    queue: mpsc::Sender<Envelope>,
    inbox: Arc<Mutex<mpsc::Receiver<Envelope>>>,
    cache: Arc<Mutex<ActionCache>>,
    workers: Mutex<Vec<Arc<WorkerSlot>>>,
    next_worker_id: AtomicUsize,
    retired: AtomicUsize,
}

/// The pool of JavaScript workers. Cheap to clone; every clone feeds the same workers.
/// The workers and the watchdog stop when the last clone is dropped.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Engine")
            .field("limits", &self.shared.limits)
            .field("retired_workers", &self.retired_workers())
            .finish()
    }
}

impl Engine {
    /// Starts the workers (at least one) and the watchdog.
    pub fn start(limits: Limits) -> Engine {
        let (queue, inbox) = mpsc::channel();
        let shared = Arc::new(Shared {
            limits,
            queue,
            inbox: Arc::new(Mutex::new(inbox)),
            cache: Arc::new(Mutex::new(ActionCache::default())),
            workers: Mutex::new(Vec::new()),
            next_worker_id: AtomicUsize::new(0),
            retired: AtomicUsize::new(0),
        });
        for _ in 0..shared.limits.workers.max(1) {
            spawn_worker(&shared);
        }
        let watched = Arc::downgrade(&shared);
        if let Err(error) = std::thread::Builder::new()
            .name("tessera-js-watchdog".to_string())
            .spawn(move || watchdog(watched))
        {
            tracing::error!(%error, "actions: could not start the watchdog thread");
        }
        Engine { shared }
    }

    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// Workers given up for stuck since the start (each was replaced). A retired thread
    /// ends by itself if its code ever returns.
    pub fn retired_workers(&self) -> usize {
        self.shared.retired.load(Ordering::Relaxed)
    }

    /// Runs a trigger's rules and actions, in order. A limit, a crash of the code or a
    /// stuck worker is a [`Failure`] in the outcome, never a hang.
    pub async fn run(&self, job: Job) -> Result<Outcome, EngineError> {
        if job.actions.is_empty() && job.rules.is_empty() {
            return Ok(Outcome::default());
        }
        let budget = self.shared.limits.per_trigger;
        match self.submit(Task::Run(Box::new(job)), budget).await? {
            (_, Ok(TaskResult::Outcome(outcome))) => Ok(*outcome),
            (_, Ok(TaskResult::Checked(_))) => Err(EngineError::Stopped),
            (by, Err(message)) => Ok(Outcome {
                failed: Some(Failure { by, message }),
                ..Outcome::default()
            }),
        }
    }

    /// Compiles an action's `code` without running it: the error an administrator sees
    /// on save. The trigger does not change how code compiles; it is kept for the API.
    pub async fn check(&self, _trigger: Trigger, code: &str) -> Result<(), String> {
        self.checked(Task::CheckAction(code.to_string())).await
    }

    /// Compiles a legacy Rule's script (`function (user, context, callback) {…}`)
    /// without running it.
    pub async fn check_rule(&self, script: &str) -> Result<(), String> {
        self.checked(Task::CheckRule(script.to_string())).await
    }

    async fn checked(&self, task: Task) -> Result<(), String> {
        let budget = self.shared.limits.per_action;
        match self.submit(task, budget).await {
            Ok((_, Ok(TaskResult::Checked(result)))) => result,
            Ok((_, Ok(TaskResult::Outcome(_)))) | Err(_) => {
                Err("the actions engine is not running".to_string())
            }
            Ok((_, Err(message))) => Err(message),
        }
    }

    /// Queues a task and waits for it, bounded twice: for a worker to take it, then for
    /// the worker to finish (`budget` + [`GRACE`]; the watchdog retires it past that).
    /// A failure to finish comes with the name of the rule or action that was running.
    async fn submit(
        &self,
        task: Task,
        budget: Duration,
    ) -> Result<(String, Result<TaskResult, String>), EngineError> {
        let (started, started_rx) = oneshot::channel();
        let (done, done_rx) = oneshot::channel();
        self.shared
            .queue
            .send(Envelope {
                task,
                started,
                done,
            })
            .map_err(|_| EngineError::Stopped)?;
        // Every queued task ahead takes at most a budget, and stuck workers are replaced,
        // so a wait longer than a few budgets means the pool cannot keep up.
        let queue_wait = budget.saturating_mul(3) + GRACE;
        let slot = match tokio::time::timeout(queue_wait, started_rx).await {
            Ok(Ok(slot)) => slot,
            Ok(Err(_)) => return Err(EngineError::Stopped),
            Err(_) => {
                return Ok((
                    String::new(),
                    Err(
                        "the actions engine is overloaded: no worker took the job in time"
                            .to_string(),
                    ),
                ));
            }
        };
        let outcome = tokio::time::timeout(budget + GRACE, done_rx).await;
        let running = || lock(&slot.running).clone();
        match outcome {
            Ok(Ok(result)) => Ok((String::new(), Ok(result))),
            Ok(Err(_)) => Ok((
                running(),
                Err("the actions worker stopped unexpectedly".to_string()),
            )),
            Err(_) => {
                retire(&self.shared, &slot);
                Ok((
                    running(),
                    Err(format!(
                        "the code did not stop at its time limit ({} ms); its worker was retired",
                        budget.as_millis()
                    )),
                ))
            }
        }
    }
}

fn spawn_worker(shared: &Arc<Shared>) {
    let id = shared.next_worker_id.fetch_add(1, Ordering::Relaxed);
    let slot = Arc::new(WorkerSlot {
        id,
        retired: AtomicBool::new(false),
        busy_until: Mutex::new(None),
        running: Mutex::new(String::new()),
    });
    let inbox = shared.inbox.clone();
    let cache = shared.cache.clone();
    let limits = shared.limits.clone();
    let worker_slot = slot.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("tessera-js-{id}"))
        .stack_size(WORKER_STACK_BYTES)
        .spawn(move || worker_loop(worker_slot, inbox, cache, limits));
    match spawned {
        Ok(_) => lock(&shared.workers).push(slot),
        Err(error) => tracing::error!(%error, "actions: could not start a worker thread"),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn worker_loop(
    slot: Arc<WorkerSlot>,
    inbox: Arc<Mutex<mpsc::Receiver<Envelope>>>,
    cache: Arc<Mutex<ActionCache>>,
    limits: Limits,
) {
    // The runtime is created here, on the thread that will use it, and never leaves.
    let mut js = JsWorker::new(limits.clone(), cache);
    loop {
        let envelope = match lock(&inbox).recv() {
            Ok(envelope) => envelope,
            Err(_) => return, // the engine was dropped
        };
        if envelope.started.send(slot.clone()).is_err() {
            continue; // the caller gave up while the task was queued
        }
        let budget = match envelope.task {
            Task::Run(_) => limits.per_trigger,
            Task::CheckAction(_) | Task::CheckRule(_) => limits.per_action,
        };
        let started = Instant::now();
        *lock(&slot.busy_until) = Some(started + budget + GRACE);
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match envelope.task {
                Task::Run(job) => {
                    TaskResult::Outcome(Box::new(run_job(&mut js, *job, &limits, &slot.running)))
                }
                Task::CheckAction(code) => TaskResult::Checked(js.check_action(
                    &code,
                    Deadline {
                        at: started + limits.per_action,
                        is_trigger: false,
                    },
                )),
                Task::CheckRule(script) => TaskResult::Checked(js.check_rule(
                    &script,
                    Deadline {
                        at: started + limits.per_action,
                        is_trigger: false,
                    },
                )),
            }));
        *lock(&slot.busy_until) = None;
        match result {
            Ok(result) => {
                let _ = envelope.done.send(result);
            }
            Err(_) => {
                // Dropping `done` tells the caller; a fresh runtime replaces the one the
                // panic may have left half-way.
                tracing::error!(worker = slot.id, "actions: a worker panicked");
                js = JsWorker::new(limits.clone(), js.cache());
            }
        }
        if slot.retired.load(Ordering::Acquire) {
            tracing::warn!(
                worker = slot.id,
                "actions: a retired worker came back and ends"
            );
            return;
        }
    }
}

/// Retires every worker past its deadline and grace, and starts a replacement, so the
/// pool never shrinks. Ends with the engine.
fn watchdog(shared: Weak<Shared>) {
    loop {
        std::thread::sleep(WATCHDOG_TICK);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let now = Instant::now();
        let overdue: Vec<Arc<WorkerSlot>> = lock(&shared.workers)
            .iter()
            .filter(|slot| lock(&slot.busy_until).is_some_and(|until| until <= now))
            .cloned()
            .collect();
        for slot in overdue {
            retire(&shared, &slot);
        }
    }
}

/// Gives a stuck worker up: it gets no more work, and a new worker takes its place.
/// Both the watchdog and a caller that stopped waiting call this; the first one wins.
fn retire(shared: &Arc<Shared>, slot: &Arc<WorkerSlot>) {
    if slot.retired.swap(true, Ordering::AcqRel) {
        return;
    }
    lock(&shared.workers).retain(|worker| !Arc::ptr_eq(worker, slot));
    let retired = shared.retired.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::error!(
        worker = slot.id,
        retired,
        "actions: a worker did not stop at its deadline; retired and replaced"
    );
    spawn_worker(shared);
}
