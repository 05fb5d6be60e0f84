//! `GET /cgi-bin/gettoken?corpid=ID&corpsecret=SECRET` (SPEC §1).
//!
//! 41002 missing corpid, 41004 missing secret, 40013 unknown corpid, 40001 wrong secret.
//! While an app's token is valid, gettoken answers the same token (as WeCom does) with the
//! remaining lifetime as `expires_in`; after it expires a new one is issued.

use http::Response;

use super::Ctx;
use crate::body::MockBody;
use crate::state::TokenEntry;

pub(crate) fn handle(ctx: &Ctx) -> Response<MockBody> {
    let corp_id = match ctx.query("corpid") {
        Some(c) if !c.is_empty() => c,
        _ => return ctx.error(41002),
    };
    let secret = match ctx.query("corpsecret") {
        Some(s) if !s.is_empty() => s,
        _ => return ctx.error(41004),
    };
    let apps = &ctx.state.config.apps;
    if !apps.iter().any(|a| a.corp_id == corp_id) {
        return ctx.error(40013);
    }
    let Some(app) = apps
        .iter()
        .position(|a| a.corp_id == corp_id && a.secret == secret)
    else {
        return ctx.error(40001);
    };
    let (token, expires_in) = match ctx.expires_in {
        Some(secs) => issue_short(&ctx.state, app, secs),
        None => issue_for(&ctx.state, app),
    };
    ctx.ok(serde_json::json!({"access_token": token, "expires_in": expires_in}))
}

/// The app's live token (or a new one) and its remaining lifetime in seconds.
pub(crate) fn issue_for(state: &crate::state::State, app: usize) -> (String, u64) {
    let now = state.now_ms();
    let lifetime = state.config.token_lifetime.as_millis();
    let fresh = state.random_id(86);
    let mut inner = state.lock();
    if let Some(tok) = inner.current_token.get(&app)
        && let Some(entry) = inner.tokens.get(tok)
        && entry.expires_at_ms > now
    {
        let left = (entry.expires_at_ms - now).div_ceil(1000);
        return (tok.clone(), u64::try_from(left).unwrap_or(u64::MAX));
    }
    inner.tokens.insert(
        fresh.clone(),
        TokenEntry {
            app,
            expires_at_ms: now + lifetime,
        },
    );
    inner.current_token.insert(app, fresh.clone());
    (fresh, state.config.token_lifetime.as_secs())
}

/// A fresh token for `app` that lives `secs` seconds (the `ExpiresIn` fault); it becomes the
/// app's live token.
pub(crate) fn issue_short(state: &crate::state::State, app: usize, secs: u64) -> (String, u64) {
    let now = state.now_ms();
    let fresh = state.random_id(86);
    let mut inner = state.lock();
    inner.tokens.insert(
        fresh.clone(),
        TokenEntry {
            app,
            expires_at_ms: now + u128::from(secs) * 1000,
        },
    );
    inner.current_token.insert(app, fresh.clone());
    (fresh, secs)
}
