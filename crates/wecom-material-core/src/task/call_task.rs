//! One JSON call (an upload, upload-image, upload-by-url, a job result) as a [`Task`]: the
//! call driver's [`Call`] plus reading its answers, on one lane.
//!
//! ```text
//!   Idle ──poll: the call sends──▶ AwaitHead ──Head──▶ AwaitBody ──poll──▶ ReadBody{limit}
//!     ▲                              │                    │ Body: Call::on_response
//!     │                              │ TransportFailed    │ TransportFailed
//!     └──────────────────────────────┴────────────────────┘ (after a gettoken answer the
//!                                                            next poll is WakeOthers)
//!   Idle ──poll: the call backs off / waits for a token──▶ Wait{until, wakeable}
//!   Idle ──poll: the call asks the store──▶ AwaitStore ──Store(reply)──▶ Idle
//!   Idle ──poll: a shared-store refresh ended──▶ WakeOthers
//!   Idle ──poll: the call is over──▶ Done(result)
//!   any ──Local(error) / cancel──▶ Done(Err(error / Cancelled))
//! ```

use std::time::Instant;

use crate::api_json::MAX_JSON_RESPONSE;
use crate::client_settings::ClientSettings;
use crate::driver::{Call, RetryPolicy};
use crate::endpoint::BaseUrl;
use crate::error::Error;
use crate::operation::Operation;
use crate::task::{Action, ClientState, Event, Exchange, LaneId, Machine, OneLane, Timeouts};
use crate::task::{misuse, one_lane_task};

enum Phase {
    Idle,
    /// A request is out; `token` when it is the gettoken request.
    AwaitHead {
        token: bool,
    },
    /// The head arrived; its body is to be read whole.
    AwaitBody {
        head: http::response::Parts,
        token: bool,
    },
    /// A command is out on the shared token store.
    AwaitStore,
    /// The outcome is decided here rather than by the call (local failure, misuse, cancel).
    Over(Option<Result<(), Error>>),
}

/// One call of operation `O` as a whole operation (see the [`task`](crate::task) module docs).
pub struct CallTask<O: Operation>(OneLane<CallMachine<O>>);

one_lane_task!(CallTask<O: Operation>, O::Output);

impl<O: Operation> std::fmt::Debug for CallTask<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallTask")
            .field("call", &self.0.machine().call)
            .finish()
    }
}

impl<O: Operation> CallTask<O> {
    /// A call of `op` against `base`; its business request uses `timeouts` (gettoken always
    /// [`Timeouts::Json`]). `jitter_seed` makes this call's backoff jitter.
    pub fn new(
        op: O,
        base: BaseUrl,
        policy: RetryPolicy,
        jitter_seed: u64,
        timeouts: Timeouts,
    ) -> Self {
        Self(OneLane::new(CallMachine::new(
            op,
            base,
            policy,
            jitter_seed,
            timeouts,
        )))
    }

    /// A call of `op` with a client's settings (base URL, retry policy).
    pub fn for_client(
        op: O,
        settings: &ClientSettings,
        timeouts: Timeouts,
        jitter_seed: u64,
    ) -> Self {
        let (base, policy) = (settings.base.clone(), settings.retry_policy);
        Self::new(op, base, policy, jitter_seed, timeouts)
    }

    /// The operation.
    pub fn operation(&self) -> &O {
        self.0.machine().call.operation()
    }
}

/// The inside of a [`CallTask`], also run by the download and job-wait tasks for each of
/// their requests.
pub(crate) struct CallMachine<O: Operation> {
    call: Call<O>,
    phase: Phase,
    wake: bool,
}

impl<O: Operation> CallMachine<O> {
    pub(crate) fn new(
        op: O,
        base: BaseUrl,
        policy: RetryPolicy,
        jitter_seed: u64,
        timeouts: Timeouts,
    ) -> Self {
        Self {
            call: Call::new(op, base, policy, jitter_seed, timeouts),
            phase: Phase::Idle,
            wake: false,
        }
    }

    /// The operation.
    pub(crate) fn operation(&self) -> &O {
        self.call.operation()
    }

    /// Whether the task owes its client a `WakeOthers` (it ended a token refresh) and has not
    /// returned it; clears it. For a parent task that drops this call before polling it again.
    pub(crate) fn take_wake(&mut self) -> bool {
        std::mem::take(&mut self.wake)
    }

    /// Whether the task waits for the head of a business request (not of gettoken).
    pub(crate) fn awaits_business_head(&self) -> bool {
        matches!(self.phase, Phase::AwaitHead { token: false })
    }

    fn end(&mut self, state: &mut ClientState, error: Error) {
        self.wake |= self.call.holds_refresh();
        self.call.cancel(&mut state.tokens);
        self.phase = Phase::Over(Some(Err(error)));
    }
}

impl<O: Operation> Machine for CallMachine<O> {
    type Output = O::Output;

    fn poll(&mut self, now: Instant, state: &mut ClientState) -> Action<O::Output> {
        if std::mem::take(&mut self.wake) {
            return Action::WakeOthers;
        }
        match &mut self.phase {
            Phase::Idle => {}
            Phase::AwaitHead { .. } | Phase::AwaitStore => {
                let error = misuse_poll("an event");
                self.end(state, error);
                return self.poll(now, state);
            }
            Phase::AwaitBody { .. } => {
                let limit = MAX_JSON_RESPONSE;
                return Action::Exchange(LaneId::MAIN, Exchange::ReadBody { limit });
            }
            Phase::Over(outcome) => {
                return match outcome.take() {
                    Some(Err(error)) => Action::Done(Err(error)),
                    _ => Action::Done(Err(misuse_poll("nothing: the task had ended"))),
                };
            }
        }
        let action = self.call.poll(now, &mut state.tokens);
        self.phase = match &action {
            Action::Exchange(_, Exchange::Send { .. }) => Phase::AwaitHead {
                token: self.call.is_token_request_in_flight(),
            },
            Action::Exchange(_, _) => Phase::AwaitStore,
            Action::Done(_) => Phase::Over(None),
            _ => Phase::Idle,
        };
        // The call's error leaves the core here: the client's own secret and tokens are
        // masked in its text (an errmsg or a body quoted back may hold them).
        match action {
            Action::Done(result) => Action::Done(result.map_err(|e| state.tokens.redact(e))),
            other => other,
        }
    }

    fn on_event(&mut self, now: Instant, state: &mut ClientState, event: Event) {
        match (std::mem::replace(&mut self.phase, Phase::Idle), event) {
            (Phase::AwaitHead { token }, Event::Head(head)) => {
                self.phase = Phase::AwaitBody { head, token };
            }
            (Phase::AwaitBody { head, token }, Event::Body(body)) => {
                let response = http::Response::from_parts(head, body);
                self.call.on_response(now, &mut state.tokens, response);
                // A refresh through a shared store is not over with its gettoken answer.
                self.wake = token && !self.call.holds_refresh();
            }
            (
                Phase::AwaitHead { token } | Phase::AwaitBody { token, .. },
                Event::TransportFailed(error),
            ) => {
                self.call.on_transport_error(now, &mut state.tokens, error);
                self.wake = token && !self.call.holds_refresh();
            }
            (Phase::AwaitStore, Event::Store(outcome)) => self.call.on_store(outcome),
            (
                phase @ (Phase::AwaitHead { .. } | Phase::AwaitBody { .. } | Phase::AwaitStore),
                Event::Local(error),
            ) => {
                self.phase = phase;
                self.end(state, error);
            }
            (phase @ Phase::Over(_), _) => self.phase = phase,
            (phase, event) => {
                let expected = match phase {
                    Phase::AwaitHead { .. } => "Head or TransportFailed",
                    Phase::AwaitBody { .. } => "Body, TransportFailed or Local",
                    Phase::AwaitStore => "Store",
                    _ => "no event (poll first)",
                };
                let error = misuse(&event, expected);
                self.phase = phase;
                self.end(state, error);
            }
        }
    }

    fn progress(&self) -> Option<crate::transfer::Progress> {
        self.call.operation().progress()
    }

    fn cancel(&mut self, state: &mut ClientState) {
        if !matches!(self.phase, Phase::Over(_)) {
            let error = self.call.cancelled();
            self.end(state, error);
        }
    }

    /// Nothing a call does reaches a sink: once cancelled, it ends without waiting for its
    /// outstanding step (an async transport drops the request, an upload's body with it).
    fn ends_at_cancel(&self) -> bool {
        true
    }
}

fn misuse_poll(expected: &str) -> Error {
    Error::Transport(crate::error::TransportError::maybe_sent(format!(
        "transport misuse: polled again where {expected} was due"
    )))
}
