//! The CLI's token cache file, as a tampered file may hold it: the bytes parsed the way the
//! CLI parses them (a JSON object of app key → `StoredToken`), then every entry imported
//! into a token cache at an arbitrary wall-clock time, looked up and exported again.
//!
//! Checked: no panic on any bytes or any numbers (an `expires_at_unix` of 2^64 − 1 used to be
//! cached for centuries, and an `expires_in` near 2^63 overflowed the clock); a token is
//! adopted only if it is 1 to 512 bytes and lives at most a day; what is exported is the
//! token adopted, expiring no later than a day after `now`.
#![no_main]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use wecom_material_core::internals::TokenCache;
use wecom_material_core::internals::TokenLookup;
use wecom_material_core::ops::gettoken::GetToken;
use wecom_material_core::{CorpSecret, StoredToken};

const DAY: u64 = 86_400;

fuzz_target!(|data: &[u8]| {
    let Some((clock, file)) = data.split_first_chunk::<8>() else {
        return;
    };
    let now_unix = u64::from_le_bytes(*clock);
    let Ok(entries) = serde_json::from_slice::<BTreeMap<String, StoredToken>>(file) else {
        return;
    };
    let now = Instant::now();
    for (_, stored) in entries {
        let mut cache = TokenCache::new(GetToken::new("ww", CorpSecret::new("s")));
        let adopted = cache.import(stored.clone(), now, now_unix);
        if !adopted {
            assert!(matches!(cache.lookup(now), TokenLookup::Fetch(_)));
            continue;
        }
        assert!((1..=512).contains(&stored.access_token.len()));
        assert!(stored.expires_at_unix > now_unix);
        assert!(stored.expires_at_unix - now_unix <= DAY);
        match cache.lookup(now) {
            TokenLookup::Ready { token, .. } => assert_eq!(token.expose(), stored.access_token),
            other => panic!("an adopted token is not served: {other:?}"),
        }
        let exported = cache
            .export(now, now_unix)
            .expect("a valid token is exported");
        assert_eq!(exported.access_token, stored.access_token);
        assert!(exported.expires_at_unix <= now_unix.saturating_add(DAY));
        // Far in the future the token is gone, without overflow.
        let later = now + Duration::from_secs(2 * DAY);
        assert!(
            cache
                .export(later, now_unix.saturating_add(2 * DAY))
                .is_none()
        );
    }
});
