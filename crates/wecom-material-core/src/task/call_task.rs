//! One JSON call (an upload, upload-image, upload-by-url, a job result) as a [`Task`]: the
//! call driver's [`Call`] plus reading its answers.
//!
//! ```text
//!   Idle ──poll: Call says Send──▶ AwaitHead ──Head──▶ AwaitBody ──poll──▶ ReadBody{limit}
//!     ▲                              │                    │ Body: Call::on_response
//!     │                              │ TransportFailed    │ TransportFailed
//!     └──────────────────────────────┴────────────────────┘ (after a gettoken answer the
//!                                                            next poll is WakeOthers)
//!   Idle ──poll: Call says Sleep / WaitForToken──▶ Wait{until, wakeable}
//!   Idle ──poll: Call says Store──▶ AwaitStore ──Store(reply)──▶ Idle
//!   Idle ──poll: Call says WakeTokenWaiters (a shared-store refresh ended)──▶ WakeOthers
//!   Idle ──poll: Call says Done──▶ Done(result)
//!   any ──Local(error) / cancel──▶ Done(Err(error / Cancelled))
//! ```

use std::time::Instant;

use crate::api_json::MAX_JSON_RESPONSE;
use crate::client_settings::ClientSettings;
use crate::driver::{Call, RetryPolicy, Step};
use crate::endpoint::BaseUrl;
use crate::error::Error;
use crate::operation::Operation;
use crate::task::{Action, ClientState, Event, Lane, Task, misuse};

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
pub struct CallTask<O: Operation> {
    call: Call<O>,
    lane: Lane,
    phase: Phase,
    wake: bool,
}

impl<O: Operation> std::fmt::Debug for CallTask<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallTask")
            .field("call", &self.call)
            .finish()
    }
}

impl<O: Operation> CallTask<O> {
    /// A call of `op` against `base`; business requests use `lane`'s timeouts (gettoken is
    /// always [`Lane::Json`]). `jitter_seed` makes this call's backoff jitter.
    pub fn new(op: O, base: BaseUrl, policy: RetryPolicy, jitter_seed: u64, lane: Lane) -> Self {
        Self {
            call: Call::new(op, base, policy, jitter_seed),
            lane,
            phase: Phase::Idle,
            wake: false,
        }
    }

    /// A call of `op` with a client's settings (base URL, retry policy).
    pub fn for_client(op: O, settings: &ClientSettings, lane: Lane, jitter_seed: u64) -> Self {
        let (base, policy) = (settings.base.clone(), settings.retry_policy);
        Self::new(op, base, policy, jitter_seed, lane)
    }

    /// The operation.
    pub fn operation(&self) -> &O {
        self.call.operation()
    }

    /// The call driver (for its counters).
    pub fn call(&self) -> &Call<O> {
        &self.call
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

impl<O: Operation> Task for CallTask<O> {
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
                return Action::ReadBody {
                    limit: MAX_JSON_RESPONSE,
                };
            }
            Phase::Over(outcome) => {
                return match outcome.take() {
                    Some(Err(error)) => Action::Done(Err(error)),
                    _ => Action::Done(Err(misuse_poll("nothing: the task had ended"))),
                };
            }
        }
        match self.call.poll(now, &mut state.tokens) {
            Step::Send(request) => {
                let token = self.call.is_token_request_in_flight();
                self.phase = Phase::AwaitHead { token };
                let lane = if token { Lane::Json } else { self.lane };
                Action::Send { request, lane }
            }
            Step::Sleep { until } => Action::Wait {
                until,
                wakeable: false,
            },
            Step::WaitForToken { until } => Action::Wait {
                until,
                wakeable: true,
            },
            Step::Store(command) => {
                self.phase = Phase::AwaitStore;
                Action::Store(command)
            }
            Step::WakeTokenWaiters => Action::WakeOthers,
            Step::Done(result) => {
                self.phase = Phase::Over(None);
                Action::Done(result.map_err(|e| state.tokens.redact(e)))
            }
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

    fn cancel(&mut self, state: &mut ClientState) {
        if !matches!(self.phase, Phase::Over(_)) {
            self.end(state, Error::Cancelled { bytes_written: 0 });
        }
    }
}

fn misuse_poll(expected: &str) -> Error {
    Error::Transport(crate::error::TransportError::maybe_sent(format!(
        "transport misuse: polled again where {expected} was due"
    )))
}
