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
    /// The live entry as Auth0 returns it: `{value, expires_at}`.
    pub(crate) fn get(&mut self, trigger: Trigger, key: &str, now_ms: i64) -> Option<String> {
        let entries = self.by_trigger.get_mut(&trigger)?;
        let entry = entries.get(key)?;
        if entry.expires_at_ms <= now_ms {
            entries.remove(key);
            return None;
        }
        Some(
            serde_json::json!({"value": entry.value, "expires_at": entry.expires_at_ms})
                .to_string(),
        )
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
        assert!(
            cache
                .get(Trigger::PostLogin, "k", 1_500)
                .unwrap()
                .contains("\"v\"")
        );
        assert_eq!(cache.get(Trigger::CredentialsExchange, "k", 1_500), None);
        assert_eq!(cache.get(Trigger::PostLogin, "k", 2_000), None);
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
        for i in 0..MAX_ENTRIES as i64 {
            cache
                .set(Trigger::PostLogin, &format!("k{i}"), "v", 10_000 + i, 0)
                .unwrap();
        }
        cache
            .set(Trigger::PostLogin, "new", "v", 50_000, 0)
            .unwrap();
        assert_eq!(cache.get(Trigger::PostLogin, "k0", 1), None);
        assert!(cache.get(Trigger::PostLogin, "k1", 1).is_some());
        assert!(cache.get(Trigger::PostLogin, "new", 1).is_some());
        cache.delete(Trigger::PostLogin, "new");
        assert_eq!(cache.get(Trigger::PostLogin, "new", 1), None);
    }
}
