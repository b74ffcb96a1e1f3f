//! `api.cache`: a small best-effort store per trigger, shared by every worker.

use std::collections::HashMap;

use crate::Trigger;

/// Auth0's limits: 20 entries per trigger, keys up to 64 bytes, values up to 4 KB, a
/// lifetime of at most 24 hours.
pub(crate) const MAX_ENTRIES: usize = 20;
pub(crate) const MAX_KEY_BYTES: usize = 64;
pub(crate) const MAX_VALUE_BYTES: usize = 4096;
const MAX_LIFETIME_MS: i64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Clone)]
struct Entry {
    value: String,
    expires_at_ms: i64,
}

#[derive(Debug, Default)]
pub(crate) struct ActionCache {
    by_trigger: HashMap<Trigger, HashMap<String, Entry>>,
}

impl ActionCache {
    /// The trigger's live entries as JSON, `{key: {value, expires_at}}` (Auth0's shape
    /// of `api.cache.get`), for an execution to start from.
    pub(crate) fn snapshot(&mut self, trigger: Trigger, now_ms: i64) -> String {
        let Some(entries) = self.by_trigger.get_mut(&trigger) else {
            return "{}".to_string();
        };
        entries.retain(|_, entry| entry.expires_at_ms > now_ms);
        let live: serde_json::Map<String, serde_json::Value> = entries
            .iter()
            .map(|(key, entry)| {
                let shape =
                    serde_json::json!({"value": entry.value, "expires_at": entry.expires_at_ms});
                (key.clone(), shape)
            })
            .collect();
        serde_json::Value::Object(live).to_string()
    }

    /// Stores an entry, evicting the expired ones and then the one closest to expiry when
    /// the trigger's cache is full. The error is the code `api.cache.set` reports.
    pub(crate) fn set(
        &mut self,
        trigger: Trigger,
        key: &str,
        value: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<(), &'static str> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err("invalid_key");
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err("value_too_large");
        }
        if expires_at_ms <= now_ms {
            return Err("invalid_expiry");
        }
        let expires_at_ms = expires_at_ms.min(now_ms + MAX_LIFETIME_MS);
        let entries = self.by_trigger.entry(trigger).or_default();
        entries.retain(|_, entry| entry.expires_at_ms > now_ms);
        if !entries.contains_key(key) && entries.len() >= MAX_ENTRIES {
            let soonest = entries
                .iter()
                .min_by_key(|(_, entry)| entry.expires_at_ms)
                .map(|(name, _)| name.clone());
            if let Some(name) = soonest {
                entries.remove(&name);
            }
        }
        entries.insert(
            key.to_string(),
            Entry {
                value: value.to_string(),
                expires_at_ms,
            },
        );
        Ok(())
    }

    pub(crate) fn delete(&mut self, trigger: Trigger, key: &str) {
        if let Some(entries) = self.by_trigger.get_mut(&trigger) {
            entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_are_scoped_to_their_trigger() {
        let mut cache = ActionCache::default();
        cache
            .set(Trigger::PostLogin, "k", "v", 2_000, 1_000)
            .unwrap();
        assert_eq!(
            cache.snapshot(Trigger::PostLogin, 1_500),
            r#"{"k":{"expires_at":2000,"value":"v"}}"#
        );
        assert_eq!(cache.snapshot(Trigger::CredentialsExchange, 1_500), "{}");
        assert_eq!(cache.snapshot(Trigger::PostLogin, 2_000), "{}");
    }

    #[test]
    fn limits_are_enforced_and_a_full_cache_evicts_the_soonest() {
        let mut cache = ActionCache::default();
        let long_key = "k".repeat(MAX_KEY_BYTES + 1);
        assert_eq!(
            cache.set(Trigger::PostLogin, &long_key, "v", 10_000, 0),
            Err("invalid_key")
        );
        let big = "v".repeat(MAX_VALUE_BYTES + 1);
        assert_eq!(
            cache.set(Trigger::PostLogin, "k", &big, 10_000, 0),
            Err("value_too_large")
        );
        assert_eq!(
            cache.set(Trigger::PostLogin, "k", "v", 0, 0),
            Err("invalid_expiry")
        );
        for i in 0..MAX_ENTRIES as i64 {
            cache
                .set(Trigger::PostLogin, &format!("k{i}"), "v", 10_000 + i, 0)
                .unwrap();
        }
        cache
            .set(Trigger::PostLogin, "new", "v", 50_000, 0)
            .unwrap();
        let live = cache.snapshot(Trigger::PostLogin, 1);
        assert!(!live.contains("\"k0\""), "{live}");
        assert!(
            live.contains("\"k1\"") && live.contains("\"new\""),
            "{live}"
        );
        cache.delete(Trigger::PostLogin, "new");
        assert!(!cache.snapshot(Trigger::PostLogin, 1).contains("\"new\""));
    }
}
