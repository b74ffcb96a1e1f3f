//! The worker pool: dedicated threads that each own a QuickJS runtime, a shared queue,
//! and a watchdog that retires a worker stuck past its deadline and starts another.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::cache::ActionCache;
use crate::js::{Deadline, JsWorker};
use crate::run::{Prepared, run_job};
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
    Run(Box<Prepared>),
    CheckAction(String),
    CheckRule(String),
}

enum TaskResult {
    Outcome(Box<Outcome>),
    Checked(Result<(), String>),
    /// The task did not end: `by` was running when the worker was given up.
    Failed {
        by: String,
        message: String,
    },
}

/// Where a queued task is. The worker takes it, or the caller gives up on it, under the
/// lock: never both.
enum Ticket {
    Queued,
    Taken(Arc<WorkerSlot>),
    Abandoned,
}

struct Envelope {
    task: Task,
    ticket: Arc<Mutex<Ticket>>,
    done: oneshot::Sender<TaskResult>,
}

/// The reply channel of the task a worker runs, with that task's budget. Whoever takes it
/// answers the caller: the worker when the task ends, or [`retire`] if it never does. The
/// caller is woken once per task, by that answer.
type Reply = (oneshot::Sender<TaskResult>, Duration);

/// One worker thread as the watchdog sees it.
struct WorkerSlot {
    id: usize,
    retired: AtomicBool,
    /// When the current task must be finished by, grace included.
    busy_until: Mutex<Option<Instant>>,
    /// The rule or action running now, to name it if the worker gets stuck.
    running: Mutex<String>,
    reply: Mutex<Option<Reply>>,
}

/// The tasks waiting for a worker. An idle worker waits on the condition variable, so a
/// new task wakes exactly one (a receiver behind a mutex would also wake the idle worker
/// queued on that mutex, for every task).
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

#[derive(Default)]
struct QueueState {
    tasks: VecDeque<Envelope>,
    closed: bool,
}

impl Queue {
    fn push(&self, envelope: Envelope) -> Result<(), EngineError> {
        let mut state = lock(&self.state);
        if state.closed {
            return Err(EngineError::Stopped);
        }
        state.tasks.push_back(envelope);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// The next task, or `None` once the engine is dropped.
    fn pop(&self) -> Option<Envelope> {
        let mut state = lock(&self.state);
        loop {
            if let Some(envelope) = state.tasks.pop_front() {
                return Some(envelope);
            }
            if state.closed {
                return None;
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        // Queued tasks' callers learn that the engine stopped.
        state.tasks.clear();
        drop(state);
        self.ready.notify_all();
    }
}

struct Shared {
    limits: Limits,
    queue: Arc<Queue>,
    cache: Arc<Mutex<ActionCache>>,
    workers: Mutex<Vec<Arc<WorkerSlot>>>,
    next_worker_id: AtomicUsize,
    retired: AtomicUsize,
}

impl Drop for Shared {
    /// The last [`Engine`] is gone: the workers end once they finish what they run.
    fn drop(&mut self) {
        self.queue.close();
    }
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
        let shared = Arc::new(Shared {
            limits,
            queue: Arc::new(Queue::default()),
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
        // A resumed run with nothing to resume fails in `run_job`.
        let resumes = (job.redirect.as_ref()).is_some_and(|context| context.resume_at.is_some());
        if job.actions.is_empty() && job.rules.is_empty() && !resumes {
            return Ok(Outcome::default());
        }
        let budget = self.shared.limits.per_trigger;
        // The event becomes JSON here, on the caller's thread, which built it and so frees
        // it: the worker gets text only.
        let prepared = Prepared::new(job);
        match self.submit(Task::Run(Box::new(prepared)), budget).await? {
            (_, Ok(TaskResult::Outcome(outcome))) => Ok(*outcome),
            (_, Ok(TaskResult::Checked(_) | TaskResult::Failed { .. })) => {
                Err(EngineError::Stopped)
            }
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
            Ok((_, Ok(TaskResult::Outcome(_) | TaskResult::Failed { .. }))) | Err(_) => {
                Err("the actions engine is not running".to_string())
            }
            Ok((_, Err(message))) => Err(message),
        }
    }

    /// Queues a task and waits for its answer, bounded twice: a worker must take it
    /// within a few budgets, and the watchdog retires a worker that has not finished
    /// `budget` + [`GRACE`] after it took the task, which answers the caller. A failure
    /// to finish comes with the name of the rule or action that was running.
    async fn submit(
        &self,
        task: Task,
        budget: Duration,
    ) -> Result<(String, Result<TaskResult, String>), EngineError> {
        let ticket = Arc::new(Mutex::new(Ticket::Queued));
        let (done, mut done_rx) = oneshot::channel();
        self.shared.queue.push(Envelope {
            task,
            ticket: ticket.clone(),
            done,
        })?;
        // Every queued task ahead takes at most a budget, and stuck workers are replaced,
        // so a wait longer than a few budgets means the pool cannot keep up.
        let queue_wait = budget.saturating_mul(3) + GRACE;
        let answer = match tokio::time::timeout(queue_wait, &mut done_rx).await {
            Ok(answer) => answer,
            Err(_) => {
                let slot = {
                    let mut ticket = lock(&ticket);
                    match &*ticket {
                        Ticket::Taken(slot) => slot.clone(),
                        _ => {
                            *ticket = Ticket::Abandoned;
                            return Ok((
                                String::new(),
                                Err("the actions engine is overloaded: no worker took the job in time"
                                    .to_string()),
                            ));
                        }
                    }
                };
                // Taken: the watchdog answers within its tick of the worker's deadline.
                // Should it not (it could not start), the caller retires the worker.
                match tokio::time::timeout(budget + GRACE + WATCHDOG_TICK * 5, &mut done_rx).await {
                    Ok(answer) => answer,
                    Err(_) => {
                        retire(&self.shared, &slot);
                        done_rx.await
                    }
                }
            }
        };
        match answer {
            Ok(TaskResult::Failed { by, message }) => Ok((by, Err(message))),
            Ok(result) => Ok((String::new(), Ok(result))),
            Err(_) => {
                // The worker dropped the reply: its code panicked.
                let by = match &*lock(&ticket) {
                    Ticket::Taken(slot) => lock(&slot.running).clone(),
                    _ => return Err(EngineError::Stopped),
                };
                Ok((
                    by,
                    Err("the actions worker stopped unexpectedly".to_string()),
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
        reply: Mutex::new(None),
    });
    let queue = shared.queue.clone();
    let cache = shared.cache.clone();
    let limits = shared.limits.clone();
    let worker_slot = slot.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("tessera-js-{id}"))
        .stack_size(WORKER_STACK_BYTES)
        .spawn(move || worker_loop(worker_slot, queue, cache, limits));
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
    queue: Arc<Queue>,
    cache: Arc<Mutex<ActionCache>>,
    limits: Limits,
) {
    // The runtime is created here, on the thread that will use it, and never leaves.
    let mut js = JsWorker::new(limits.clone(), cache);
    loop {
        let Some(envelope) = queue.pop() else {
            return; // the engine was dropped
        };
        {
            let mut ticket = lock(&envelope.ticket);
            if matches!(*ticket, Ticket::Abandoned) {
                continue; // the caller gave up while the task was queued
            }
            *ticket = Ticket::Taken(slot.clone());
        }
        let budget = match envelope.task {
            Task::Run(_) => limits.per_trigger,
            Task::CheckAction(_) | Task::CheckRule(_) => limits.per_action,
        };
        let started = Instant::now();
        *lock(&slot.reply) = Some((envelope.done, budget));
        *lock(&slot.busy_until) = Some(started + budget + GRACE);
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match envelope.task {
                Task::Run(prepared) => TaskResult::Outcome(Box::new(run_job(
                    &mut js,
                    *prepared,
                    &limits,
                    &slot.running,
                ))),
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
        // None if the worker was retired meanwhile: the caller has had its answer.
        let reply = lock(&slot.reply).take();
        match result {
            Ok(result) => {
                if let Some((done, _)) = reply {
                    let _ = done.send(result);
                }
            }
            Err(_) => {
                // Dropping the reply tells the caller; a fresh runtime replaces the one
                // the panic may have left half-way.
                drop(reply);
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
    // Counted and replaced before the caller hears of it: what it sees next (the count,
    // a pool of the same size) already includes this retirement.
    let retired = shared.retired.fetch_add(1, Ordering::AcqRel) + 1;
    tracing::error!(
        worker = slot.id,
        retired,
        "actions: a worker did not stop at its deadline; retired and replaced"
    );
    spawn_worker(shared);
    if let Some((done, budget)) = lock(&slot.reply).take() {
        let _ = done.send(TaskResult::Failed {
            by: lock(&slot.running).clone(),
            message: format!(
                "the code did not stop at its time limit ({} ms); its worker was retired",
                budget.as_millis()
            ),
        });
    }
}
