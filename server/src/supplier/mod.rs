//! The supplier (the seed's `pageEventSupplier`): one task that writes PageEvents to R2 at
//! a steady rate, and takes ControlSupplier commands while it runs.
//!
//! It is an actor: the task owns the settings and the counters; the RPC handler talks to it
//! through a bounded channel. Each tick (at most every 100 ms) sends as many events as the
//! rate owes since the last tick, so rates from one a minute to tens of thousands a second
//! need no timer per event. Sends go through the shared producer and are counted when the
//! broker acknowledges them; a broker error is counted, logged at most once per 5 s, and the
//! supplier carries on. It runs supervised: a panic restarts it with the settings last
//! applied and its counters intact.

mod settings;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use rand::Rng;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use streamgate::page_event::{self, PageEvent};
use streamgate::proto::{self, SupplierAction};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::settings::{InvalidSettings, MIN_RATE, Settings};
use crate::kafka::Producer;
use crate::logs::LogThrottle;
use crate::supervisor::{Restarts, supervise};
use streamgate::time::from_millis;

/// Sends awaiting their acknowledgement, at most: the supplier's memory bound. When the
/// broker is slow the supplier sends less rather than queueing without end.
const MAX_IN_FLIGHT: usize = 20_000;
/// The longest time between two ticks.
const MAX_TICK: Duration = Duration::from_millis(100);
/// The window of the achieved-rate measurement.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Errors are logged at most this often.
const ERROR_LOG_EVERY: Duration = Duration::from_secs(5);

/// A handle on the running supplier.
#[derive(Clone)]
pub struct Supplier {
    commands: mpsc::Sender<Control>,
    restarts: Arc<Restarts>,
    durable: Arc<Durable>,
}

struct Control {
    action: SupplierAction,
    update: Option<proto::SupplierSettingsUpdate>,
    reply: oneshot::Sender<Result<proto::SupplierStatus, InvalidSettings>>,
    /// Test hook: the actor panics on this command.
    #[cfg(feature = "test-hooks")]
    panic: bool,
}

/// What outlives one run of the actor, so that a restart after a panic goes on where it
/// was: the command inbox, the settings last applied, and the counters.
struct Durable {
    inbox: tokio::sync::Mutex<mpsc::Receiver<Control>>,
    applied: std::sync::Mutex<(Settings, bool)>,
    sent: AtomicU64,
    errors: AtomicU64,
}

/// How the actor sends: the producer and its bounds.
#[derive(Clone)]
struct Sending {
    producer: Producer,
    max_rate: f64,
    send_timeout: Duration,
}

impl Supplier {
    /// Starts the supplier task, supervised (a panic restarts it with the settings last
    /// applied); it stops when `shutdown` is cancelled.
    pub fn spawn(
        producer: Producer,
        settings: Settings,
        running: bool,
        max_rate: f64,
        send_timeout: Duration,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let (commands, inbox) = mpsc::channel(16);
        let durable = Arc::new(Durable {
            inbox: tokio::sync::Mutex::new(inbox),
            applied: std::sync::Mutex::new((settings, running)),
            sent: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        });
        let sending = Sending {
            producer,
            max_rate,
            send_timeout,
        };
        let (token, kept) = (shutdown.clone(), durable.clone());
        let (_, restarts) = supervise(tasks, &shutdown, "supplier", move || {
            Actor::new(durable.clone(), sending.clone()).run(token.clone())
        });
        Self {
            commands,
            restarts,
            durable: kept,
        }
    }

    /// How many times the supplier was restarted after a panic.
    pub fn restarts(&self) -> u64 {
        self.restarts.count()
    }

    /// Events the broker acknowledged, and sends that failed, since the server started.
    pub fn sent_and_errors(&self) -> (u64, u64) {
        (
            self.durable.sent.load(Ordering::Relaxed),
            self.durable.errors.load(Ordering::Relaxed),
        )
    }

    /// Test hook: makes the supplier's task panic, as a bug would.
    #[cfg(feature = "test-hooks")]
    pub async fn inject_panic(&self) {
        let (reply, _) = oneshot::channel();
        let _ = self
            .commands
            .send(Control {
                action: SupplierAction::Unspecified,
                update: None,
                reply,
                panic: true,
            })
            .await;
    }

    /// Applies an action and/or settings, and returns the status. An invalid request changes
    /// nothing.
    pub async fn control(
        &self,
        action: SupplierAction,
        update: Option<proto::SupplierSettingsUpdate>,
    ) -> Result<proto::SupplierStatus, ControlError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Control {
                action,
                update,
                reply,
                #[cfg(feature = "test-hooks")]
                panic: false,
            })
            .await
            .map_err(|_| ControlError::Stopped)?;
        answer
            .await
            .map_err(|_| ControlError::Stopped)?
            .map_err(ControlError::Invalid)
    }
}

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The request is invalid; nothing changed.
    #[error("{0}")]
    Invalid(InvalidSettings),
    /// The supplier task did not answer: the server is shutting down, or the task is
    /// restarting after a panic.
    #[error("the supplier has stopped")]
    Stopped,
}

type Send = BoxFuture<'static, Result<PageEvent<'static>, String>>;

struct Actor {
    durable: Arc<Durable>,
    /// The producer; an event not acknowledged within `send_timeout` counts as an error
    /// (it may still be written later: librdkafka retries until `message.timeout.ms`).
    sending: Sending,
    settings: Settings,
    running: bool,
    last_event: Option<(PageEvent<'static>, i64)>,
    last_error: Option<String>,
    /// (when, events sent by then), over the last [`RATE_WINDOW`].
    samples: VecDeque<(Instant, u64)>,
    /// Events owed by the rate but not sent yet (fractional).
    credit: f64,
    last_tick: Instant,
    error_log: LogThrottle,
}

impl Actor {
    fn new(durable: Arc<Durable>, sending: Sending) -> Self {
        let (settings, running) = match durable.applied.lock() {
            Ok(applied) => applied.clone(),
            // A panic while the lock was held: what it holds was fully written before.
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        Self {
            durable,
            sending,
            settings,
            running,
            last_event: None,
            last_error: None,
            samples: VecDeque::new(),
            credit: 1.0,
            last_tick: Instant::now(),
            error_log: LogThrottle::new(ERROR_LOG_EVERY),
        }
    }

    async fn run(mut self, shutdown: CancellationToken) {
        let durable = self.durable.clone();
        let mut inbox = durable.inbox.lock().await;
        let mut in_flight: FuturesUnordered<Send> = FuturesUnordered::new();
        let mut ticker = self.ticker();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(control) = inbox.recv() => {
                    #[cfg(feature = "test-hooks")]
                    if control.panic {
                        panic!("supplier: panic injected by a test");
                    }
                    let before = (self.running, self.settings.rate_per_second);
                    let answer = self.apply(control.action, control.update);
                    if (self.running, self.settings.rate_per_second) != before {
                        ticker = self.ticker();
                    }
                    let _ = control.reply.send(answer.map(|()| self.status()));
                }
                Some(result) = in_flight.next(), if !in_flight.is_empty() => self.acknowledged(result),
                _ = ticker.tick(), if self.running => {
                    let room = MAX_IN_FLIGHT.saturating_sub(in_flight.len());
                    for _ in 0..self.owed_events(room) {
                        in_flight.push(self.send_one());
                    }
                }
            }
        }
    }

    fn ticker(&mut self) -> tokio::time::Interval {
        // Start owing one event, so a start (or a new rate) shows at once; measure the
        // achieved rate afresh.
        self.credit = 1.0;
        self.samples.clear();
        self.last_tick = Instant::now();
        let mut ticker = tokio::time::interval(
            self.settings
                .interval()
                .clamp(Duration::from_millis(1), MAX_TICK),
        );
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker
    }

    fn apply(
        &mut self,
        action: SupplierAction,
        update: Option<proto::SupplierSettingsUpdate>,
    ) -> Result<(), InvalidSettings> {
        if let Some(update) = update {
            self.settings = self.settings.updated(update, self.sending.max_rate)?;
        }
        match action {
            SupplierAction::Start => self.running = true,
            SupplierAction::Stop => self.running = false,
            SupplierAction::Unspecified => {}
        }
        let applied = (self.settings.clone(), self.running);
        match self.durable.applied.lock() {
            Ok(mut slot) => *slot = applied,
            Err(poisoned) => *poisoned.into_inner() = applied,
        }
        Ok(())
    }

    /// How many events the rate owes since the last tick, at most `room`.
    fn owed_events(&mut self, room: usize) -> usize {
        let now = Instant::now();
        self.credit +=
            now.duration_since(self.last_tick).as_secs_f64() * self.settings.rate_per_second;
        self.last_tick = now;
        let owed = self.credit.floor();
        let count = (owed as usize).min(room);
        // What could not be sent for lack of room is dropped, not owed forever: after a
        // broker outage the supplier resumes at its rate instead of bursting.
        self.credit = if count < owed as usize {
            0.0
        } else {
            self.credit - owed
        };
        self.sample(now);
        count
    }

    fn sample(&mut self, now: Instant) {
        self.samples
            .push_back((now, self.durable.sent.load(Ordering::Relaxed)));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    fn send_one(&self) -> Send {
        let mut rng = rand::rng();
        let settings = &self.settings;
        let event = PageEvent {
            name: settings.pages[rng.random_range(0..settings.pages.len())]
                .clone()
                .into(),
            user: settings.users[rng.random_range(0..settings.users.len())]
                .clone()
                .into(),
            date_ms: chrono::Utc::now().timestamp_millis(),
            duration_ms: rng.random_range(settings.min_duration_ms..=settings.max_duration_ms),
        };
        let producer = self.sending.producer.clone();
        let topic = settings.topic.clone();
        let deadline = Instant::now() + self.sending.send_timeout;
        Box::pin(async move {
            let value = event.to_json();
            let headers = OwnedHeaders::new().insert(Header {
                key: "content-type",
                value: Some(page_event::CONTENT_TYPE),
            });
            let record = FutureRecord::to(topic.as_str())
                .key(event.name.as_bytes())
                .payload(value.as_slice())
                .headers(headers)
                .timestamp(event.date_ms);
            match producer.send(record, deadline).await {
                Ok(_) => Ok(event),
                Err(e) => Err(e.to_string()),
            }
        })
    }

    fn acknowledged(&mut self, result: Result<PageEvent<'static>, String>) {
        match result {
            Ok(event) => {
                self.durable.sent.fetch_add(1, Ordering::Relaxed);
                self.last_event = Some((event, chrono::Utc::now().timestamp_millis()));
            }
            Err(error) => {
                self.durable.errors.fetch_add(1, Ordering::Relaxed);
                if let Some(errors) = self.error_log.hit() {
                    tracing::warn!(errors, last = %error, "supplier: events not acknowledged; carrying on");
                }
                self.last_error = Some(error);
            }
        }
    }

    fn achieved_rate(&self) -> f64 {
        match (self.samples.front(), self.samples.back()) {
            (Some((t0, n0)), Some((t1, n1))) if t1 > t0 => {
                (n1 - n0) as f64 / t1.duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    fn status(&self) -> proto::SupplierStatus {
        proto::SupplierStatus {
            running: self.running,
            settings: Some(self.settings.to_proto()),
            events_sent: self.durable.sent.load(Ordering::Relaxed),
            errors: self.durable.errors.load(Ordering::Relaxed),
            achieved_rate_per_second: if self.running {
                self.achieved_rate()
            } else {
                0.0
            },
            last_event: self.last_event.as_ref().map(|(e, _)| proto::PageEvent {
                name: e.name.to_string(),
                user: Some(e.user.to_string()),
                date: Some(from_millis(e.date_ms)),
                duration_ms: Some(e.duration_ms),
            }),
            last_error: self.last_error.clone(),
            last_sent_at: self.last_event.as_ref().map(|(_, at)| from_millis(*at)),
        }
    }
}
