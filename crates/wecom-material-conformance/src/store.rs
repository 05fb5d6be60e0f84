//! A shared token store in memory, for the shared-store scenario: the kit must run where no
//! Redis server is installed. It follows the store's rules (those of the Redis scripts of
//! `wecom-material-redis`, tested there against a real server) on the process's clock.

use std::sync::Mutex;
use std::time::Instant;

use wecom_material_core::AccessToken;
use wecom_material_core::shared_token::{
    AsyncTokenStore, CommitReply, LookupReply, StoreCommand, StoreError, StoreFuture, StoreReply,
    StoredGrant, TokenStore,
};

/// A token store in memory shared by the clients of one scenario (one app): LOOKUP hands the
/// refresh lock to one caller and tells the others to wait, COMMIT stores only under the
/// newest fence, INVALIDATE deletes only the generation (and token) named, FAIL turns the
/// lock into a cool-down. Implements both [`TokenStore`] and [`AsyncTokenStore`].
#[derive(Debug, Default)]
pub struct MemoryStore {
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    /// The token, its generation, when it expires and when the fleet refreshes it ahead.
    token: Option<(AccessToken, u64, Instant, Instant)>,
    /// The newest fencing number handed out.
    fence: u64,
    /// The refresh lock (its fence) or cool-down (`None`), until when.
    lock: Option<(Option<u64>, Instant)>,
    /// Every command run, by name.
    log: Vec<&'static str>,
}

impl MemoryStore {
    /// The names of the commands run so far (`LOOKUP`, `COMMIT`, `INVALIDATE`, `FAIL`, `WARN`).
    pub fn log(&self) -> Vec<&'static str> {
        self.lock().log.clone()
    }

    /// The token stored, if one is valid now.
    pub fn token(&self) -> Option<String> {
        let held = self.lock();
        let valid = held.token.as_ref().filter(|t| t.2 > Instant::now());
        valid.map(|t| t.0.expose().to_owned())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn answer(&self, command: StoreCommand) -> StoreReply {
        let now = Instant::now();
        let mut held = self.lock();
        let grant = |t: &(AccessToken, u64, Instant, Instant)| StoredGrant {
            token: t.0.clone(),
            generation: t.1,
            expires_in: t.2.saturating_duration_since(now),
        };
        if held.token.as_ref().is_some_and(|t| t.2 <= now) {
            held.token = None;
        }
        if held.lock.is_some_and(|(_, until)| until <= now) {
            held.lock = None;
        }
        match command {
            StoreCommand::Lookup { lease } => {
                held.log.push("LOOKUP");
                let current = held.token.as_ref().map(grant);
                let due = held.token.as_ref().is_none_or(|t| t.3 <= now);
                StoreReply::Lookup(match (current, held.lock) {
                    (Some(current), _) if !due => LookupReply::Ready(current),
                    (Some(current), Some(_)) => LookupReply::Ready(current),
                    (None, Some((fence, until))) => LookupReply::Wait {
                        retry_in: until - now,
                        cooling_down: fence.is_none(),
                    },
                    (current, None) => {
                        held.fence += 1;
                        held.lock = Some((Some(held.fence), now + lease));
                        LookupReply::Refresh {
                            fence: held.fence,
                            lease,
                            current,
                        }
                    }
                })
            }
            StoreCommand::Commit {
                fence,
                grant: fetched,
                refresh_margin,
            } => {
                held.log.push("COMMIT");
                if fence != held.fence {
                    let current = held.token.as_ref().map(grant);
                    return StoreReply::Commit(CommitReply::Superseded { current });
                }
                let expires = now + fetched.expires_in;
                let ahead = expires.checked_sub(refresh_margin).unwrap_or(now);
                held.token = Some((fetched.token, fence, expires, ahead));
                held.lock = None;
                StoreReply::Commit(CommitReply::Stored { generation: fence })
            }
            StoreCommand::Invalidate { generation, token } => {
                held.log.push("INVALIDATE");
                let named = |t: &(AccessToken, u64, Instant, Instant)| {
                    t.1 == generation && token.as_ref().is_none_or(|n| n.expose() == t.0.expose())
                };
                if held.token.as_ref().is_some_and(named) {
                    held.token = None;
                }
                StoreReply::Invalidated
            }
            StoreCommand::Fail { fence, cooldown } => {
                held.log.push("FAIL");
                if held.lock.is_some_and(|(f, _)| f == Some(fence)) {
                    held.lock = Some((None, now + cooldown));
                }
                StoreReply::Failed
            }
            StoreCommand::Warn(_) => {
                held.log.push("WARN");
                StoreReply::Warned
            }
        }
    }
}

impl TokenStore for MemoryStore {
    fn run(&self, command: StoreCommand) -> Result<StoreReply, StoreError> {
        Ok(self.answer(command))
    }
}

impl AsyncTokenStore for MemoryStore {
    fn run(&self, command: StoreCommand) -> StoreFuture<'_> {
        Box::pin(std::future::ready(Ok(self.answer(command))))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wecom_material_core::AccessToken;
    use wecom_material_core::ops::gettoken::TokenGrant;
    use wecom_material_core::shared_token::{
        CommitReply, LookupReply, StoreCommand, StoreReply, TokenStore,
    };

    use super::MemoryStore;

    const LEASE: Duration = Duration::from_secs(30);

    fn lookup(store: &MemoryStore) -> LookupReply {
        match store.run(StoreCommand::Lookup { lease: LEASE }) {
            Ok(StoreReply::Lookup(reply)) => reply,
            other => panic!("{other:?}"),
        }
    }

    fn commit(store: &MemoryStore, fence: u64, token: &str) -> CommitReply {
        let grant = TokenGrant {
            token: AccessToken::new(token).unwrap(),
            expires_in: Duration::from_secs(7200),
        };
        let command = StoreCommand::Commit {
            fence,
            grant,
            refresh_margin: Duration::from_secs(300),
        };
        match store.run(command) {
            Ok(StoreReply::Commit(reply)) => reply,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_refresher_the_others_wait_then_read_what_it_committed() {
        let store = MemoryStore::default();
        let LookupReply::Refresh { fence, .. } = lookup(&store) else {
            panic!("the first lookup refreshes")
        };
        assert!(matches!(
            lookup(&store),
            LookupReply::Wait {
                cooling_down: false,
                ..
            }
        ));
        assert_eq!(
            commit(&store, fence, "T1"),
            CommitReply::Stored { generation: fence }
        );
        let LookupReply::Ready(grant) = lookup(&store) else {
            panic!("a stored token is ready")
        };
        assert_eq!((grant.token.expose(), grant.generation), ("T1", fence));
        assert_eq!(store.token().as_deref(), Some("T1"));
    }

    #[test]
    fn a_stale_fence_is_superseded_and_invalidate_names_its_generation() {
        let store = MemoryStore::default();
        let LookupReply::Refresh { fence: old, .. } = lookup(&store) else {
            panic!("refresh")
        };
        let fail = StoreCommand::Fail {
            fence: old,
            cooldown: Duration::ZERO,
        };
        assert_eq!(store.run(fail), Ok(StoreReply::Failed));
        let LookupReply::Refresh { fence: new, .. } = lookup(&store) else {
            panic!("after a failed refresh (no cool-down) another one refreshes")
        };
        assert!(matches!(
            commit(&store, old, "OLD"),
            CommitReply::Superseded { current: None }
        ));
        assert_eq!(
            commit(&store, new, "NEW"),
            CommitReply::Stored { generation: new }
        );
        let stale = StoreCommand::Invalidate {
            generation: old,
            token: None,
        };
        assert_eq!(store.run(stale), Ok(StoreReply::Invalidated));
        assert_eq!(
            store.token().as_deref(),
            Some("NEW"),
            "another generation stays"
        );
        let named = StoreCommand::Invalidate {
            generation: new,
            token: Some(AccessToken::new("NEW").unwrap()),
        };
        assert_eq!(store.run(named), Ok(StoreReply::Invalidated));
        assert_eq!(store.token(), None);
        assert_eq!(
            store.log(),
            [
                "LOOKUP",
                "FAIL",
                "LOOKUP",
                "COMMIT",
                "COMMIT",
                "INVALIDATE",
                "INVALIDATE"
            ]
        );
    }
}
