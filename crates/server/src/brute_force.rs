//! Brute-force protection as the tenant sets it, in Auth0's terms (the Management API's
//! `/attack-protection/brute-force-protection`, the dashboard's Settings): whether failed
//! password sign-ins are counted, from which addresses, per account and network or per
//! account alone, and after how many the account is locked out. `crate::password_sign_in`
//! applies it; the Management API, the dashboard and the purge read it here. Only the
//! members an administrator set are stored; the others are Tessera's defaults.

use std::net::IpAddr;
use std::ops::RangeInclusive;

use ipnet::IpNet;
use serde_json::{Value, json};
use tessera_core::Metadata;
use tessera_store::StoreError;

use crate::AppState;
use crate::edge::throttle;

/// The threshold of a tenant that set none (Auth0's default too).
pub(crate) const DEFAULT_MAX_ATTEMPTS: i64 = 10;
/// The members, as Auth0 names them.
pub(crate) const MEMBERS: &[&str] = &["enabled", "shields", "allowlist", "mode", "max_attempts"];
/// Auth0's bounds of the threshold.
pub(crate) const MAX_ATTEMPTS: RangeInclusive<i64> = 1..=100;
/// Tessera's bound on the allowlist: it is checked on every password attempt.
pub(crate) const MAX_ALLOWLIST: usize = 100;
pub(crate) const PER_IDENTIFIER_AND_IP: &str = "count_per_identifier_and_ip";
pub(crate) const PER_IDENTIFIER: &str = "count_per_identifier";
pub(crate) const BLOCK: &str = "block";
pub(crate) const USER_NOTIFICATION: &str = "user_notification";
/// Where an account's failures from every network are counted in `count_per_identifier`
/// mode (a network's key is never empty).
const EVERY_NETWORK: &str = "";

/// The tenant's brute-force protection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BruteForce {
    pub(crate) enabled: bool,
    /// The `block` shield: an account past the threshold is refused.
    pub(crate) block: bool,
    /// The `user_notification` shield: the account's owner is mailed a link lifting the
    /// block when it starts (`crate::hosted::unblock`).
    pub(crate) notify: bool,
    /// `count_per_identifier_and_ip` (one count per account and network) rather than
    /// `count_per_identifier` (one per account).
    pub(crate) per_network: bool,
    pub(crate) max_attempts: i64,
    /// Addresses whose attempts are neither counted nor refused.
    pub(crate) allowlist: Vec<IpNet>,
}

impl BruteForce {
    /// The settings from what was stored; `default_max` is the server's threshold. Members
    /// are stored only after [`checked`], so one that does not read is left at its default.
    pub(crate) fn from_stored(stored: &Metadata, default_max: i64) -> Self {
        let strings = |key: &str| -> Vec<String> {
            stored
                .get(key)
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|item| item.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        BruteForce {
            enabled: stored
                .get("enabled")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            block: !stored.contains_key("shields") || strings("shields").iter().any(|s| s == BLOCK),
            notify: strings("shields").iter().any(|s| s == USER_NOTIFICATION),
            per_network: stored.get("mode").and_then(Value::as_str) != Some(PER_IDENTIFIER),
            max_attempts: stored
                .get("max_attempts")
                .and_then(Value::as_i64)
                .filter(|max| MAX_ATTEMPTS.contains(max))
                .unwrap_or(default_max),
            allowlist: strings("allowlist")
                .iter()
                .filter_map(|entry| network(entry))
                .collect(),
        }
    }

    /// Auth0's shape.
    pub(crate) fn json(&self) -> Value {
        let shields: Vec<&str> = [(self.block, BLOCK), (self.notify, USER_NOTIFICATION)]
            .into_iter()
            .filter_map(|(on, shield)| on.then_some(shield))
            .collect();
        let allowlist: Vec<String> = self.allowlist.iter().map(shown).collect();
        json!({
            "enabled": self.enabled,
            "shields": shields,
            "allowlist": allowlist,
            "mode": if self.per_network { PER_IDENTIFIER_AND_IP } else { PER_IDENTIFIER },
            "max_attempts": self.max_attempts,
        })
    }

    /// Whether attempts from `client_ip` are left alone: protection off, or an address on
    /// the allowlist.
    pub(crate) fn exempts(&self, client_ip: IpAddr) -> bool {
        !self.enabled || self.allowlist.iter().any(|net| net.contains(&client_ip))
    }

    /// Where the failures of an attempt from `client_ip` are counted: its network (an IPv6
    /// /64 is one client, as the throttles count), or the account alone.
    pub(crate) fn counted_at(&self, client_ip: IpAddr) -> String {
        if self.per_network {
            throttle::network_of(client_ip).to_string()
        } else {
            EVERY_NETWORK.to_string()
        }
    }

    /// Whether the `attempt`th consecutive attempt (this one counted) is refused.
    pub(crate) fn locks_out(&self, attempt: i64) -> bool {
        self.block && attempt > self.max_attempts
    }

    /// Whether the `attempt`th attempt starts a block its owner is to be told of: the
    /// first refused one (counts are atomic, so exactly one attempt is it).
    pub(crate) fn notifies(&self, attempt: i64) -> bool {
        self.notify && self.block && attempt == self.max_attempts + 1
    }

    /// Whether a recorded count keyed `counted_at` is a block in force now.
    pub(crate) fn in_force(&self, counted_at: &str) -> bool {
        let allowlisted = counted_at
            .parse::<IpAddr>()
            .is_ok_and(|ip| self.allowlist.iter().any(|net| net.contains(&ip)));
        self.enabled && self.block && !allowlisted
    }
}

/// A count's key as an address to show: `None` for an account's count over every network.
pub(crate) fn address_of(counted_at: &str) -> Option<&str> {
    Some(counted_at).filter(|key| !key.is_empty())
}

/// An allowlist entry: an address or a network in CIDR notation.
fn network(entry: &str) -> Option<IpNet> {
    entry
        .parse::<IpNet>()
        .ok()
        .or_else(|| entry.parse::<IpAddr>().ok().map(IpNet::from))
        .map(|net| net.trunc())
}

/// A network as an administrator wrote it: a lone address without its prefix.
fn shown(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

/// Checks one member of a change (`member` is one of [`MEMBERS`], its value not `null`)
/// and returns what is stored: the value as Tessera reads it back.
pub(crate) fn checked(member: &str, value: &Value) -> Result<Value, String> {
    match member {
        "enabled" => value
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| "enabled must be true or false".to_string()),
        "max_attempts" => value
            .as_i64()
            .filter(|max| MAX_ATTEMPTS.contains(max))
            .map(|max| json!(max))
            .ok_or_else(|| {
                format!(
                    "max_attempts must be an integer from {} to {}",
                    MAX_ATTEMPTS.start(),
                    MAX_ATTEMPTS.end()
                )
            }),
        "mode" => match value.as_str() {
            Some(mode @ (PER_IDENTIFIER_AND_IP | PER_IDENTIFIER)) => Ok(json!(mode)),
            _ => Err(format!(
                "mode must be {PER_IDENTIFIER_AND_IP:?} or {PER_IDENTIFIER:?}"
            )),
        },
        "shields" => {
            let shields = strings(value, "shields", 2)?;
            if let Some(other) = shields
                .iter()
                .find(|shield| ![BLOCK, USER_NOTIFICATION].contains(&shield.as_str()))
            {
                let shown: String = other.chars().take(40).collect();
                return Err(format!(
                    "Unknown shield {shown:?}: shields are \"block\" and \"user_notification\""
                ));
            }
            let has = |shield: &str| shields.iter().any(|s| s == shield);
            if has(USER_NOTIFICATION) && !has(BLOCK) {
                return Err(
                    "user_notification tells the owner of a block: it needs the block shield"
                        .to_string(),
                );
            }
            let kept: Vec<&str> = [BLOCK, USER_NOTIFICATION]
                .into_iter()
                .filter(|shield| has(shield))
                .collect();
            Ok(json!(kept))
        }
        "allowlist" => {
            let entries = strings(value, "allowlist", MAX_ALLOWLIST)?;
            let mut networks: Vec<String> = Vec::with_capacity(entries.len());
            for entry in &entries {
                let Some(net) = network(entry) else {
                    let shown: String = entry.chars().take(60).collect();
                    return Err(format!(
                        "allowlist entries are addresses or networks (CIDR): {shown:?} is neither"
                    ));
                };
                let net = shown(&net);
                if !networks.contains(&net) {
                    networks.push(net);
                }
            }
            Ok(json!(networks))
        }
        _ => Err(format!("Unknown member {member}")),
    }
}

/// `value` as a list of at most `max` strings.
fn strings(value: &Value, member: &str, max: usize) -> Result<Vec<String>, String> {
    let items = value
        .as_array()
        .ok_or_else(|| format!("{member} must be an array of strings"))?;
    if items.len() > max {
        return Err(format!("{member} holds at most {max} entries"));
    }
    items
        .iter()
        .map(|item| {
            item.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{member} must be an array of strings"))
        })
        .collect()
}

/// The tenant's brute-force protection, as this node keeps it (`crate::cache`).
pub(crate) async fn settings(state: &AppState) -> Result<BruteForce, StoreError> {
    let stored = state
        .config_reads()
        .brute_force_settings(state.store())
        .await?;
    Ok(BruteForce::from_stored(
        &stored,
        state.config().max_login_failures,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(value: Value) -> Metadata {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn defaults_count_per_account_and_network_and_block_at_the_servers_threshold() {
        let settings = BruteForce::from_stored(&Metadata::new(), 10);
        assert_eq!(
            settings.json(),
            json!({"enabled": true, "shields": ["block"], "allowlist": [],
                   "mode": PER_IDENTIFIER_AND_IP, "max_attempts": 10})
        );
        let v6: IpAddr = "2001:db8::1:2:3:4".parse().unwrap();
        assert_eq!(settings.counted_at(v6), "2001:db8::");
        assert!(!settings.locks_out(10) && settings.locks_out(11));
        assert!(!settings.notifies(11), "no user_notification shield");
        let notifying = BruteForce::from_stored(
            &stored(json!({"shields": ["block", "user_notification"], "max_attempts": 3})),
            10,
        );
        assert_eq!(
            notifying.json()["shields"],
            json!(["block", "user_notification"])
        );
        assert!(!notifying.notifies(3) && notifying.notifies(4) && !notifying.notifies(5));
    }

    #[test]
    fn the_allowlist_exempts_its_networks_and_the_mode_picks_the_key() {
        let settings = BruteForce::from_stored(
            &stored(
                json!({"allowlist": ["10.0.0.0/8", "192.0.2.7"], "mode": PER_IDENTIFIER,
                           "shields": [], "max_attempts": 3}),
            ),
            10,
        );
        assert!(settings.exempts("10.9.8.7".parse().unwrap()));
        assert!(settings.exempts("192.0.2.7".parse().unwrap()));
        assert!(!settings.exempts("192.0.2.8".parse().unwrap()));
        assert_eq!(settings.counted_at("192.0.2.8".parse().unwrap()), "");
        assert!(!settings.locks_out(100), "no block shield, nobody refused");
        assert_eq!(
            settings.json()["allowlist"],
            json!(["10.0.0.0/8", "192.0.2.7"])
        );
        assert!(!settings.in_force("1.2.3.4"));
    }

    #[test]
    fn blocks_in_force_skip_allowlisted_networks_and_a_disabled_protection() {
        let settings = BruteForce::from_stored(&stored(json!({"allowlist": ["10.0.0.0/8"]})), 5);
        assert!(settings.in_force("1.2.3.4") && settings.in_force(""));
        assert!(!settings.in_force("10.1.1.1"));
        let off = BruteForce::from_stored(&stored(json!({"enabled": false})), 5);
        assert!(!off.in_force("1.2.3.4") && off.exempts("1.2.3.4".parse().unwrap()));
        assert_eq!(address_of(""), None);
        assert_eq!(address_of("1.2.3.4"), Some("1.2.3.4"));
    }

    #[test]
    fn changes_are_checked_member_by_member() {
        assert_eq!(checked("max_attempts", &json!(100)), Ok(json!(100)));
        for bad in [json!(0), json!(101), json!(2.5), json!("5"), json!(-1)] {
            assert!(checked("max_attempts", &bad).is_err(), "{bad}");
        }
        assert_eq!(
            checked("shields", &json!(["block", "block"])),
            Ok(json!(["block"]))
        );
        assert_eq!(checked("shields", &json!([])), Ok(json!([])));
        assert_eq!(
            checked("shields", &json!(["user_notification", "block"])),
            Ok(json!(["block", "user_notification"]))
        );
        let refused = checked("shields", &json!(["user_notification"])).unwrap_err();
        assert!(refused.contains("needs the block shield"), "{refused}");
        assert!(checked("shields", &json!(["block", "captcha"])).is_err());
        assert!(checked("shields", &json!(["block", "x", "y"])).is_err());
        assert_eq!(
            checked("allowlist", &json!(["10.1.2.3/8", "::1", "::1/128"])),
            Ok(json!(["10.0.0.0/8", "::1"]))
        );
        for bad in [
            json!(["10.0.0.0/33"]),
            json!(["example.com"]),
            json!([1]),
            json!("1.2.3.4"),
        ] {
            assert!(checked("allowlist", &bad).is_err(), "{bad}");
        }
        let many: Vec<String> = (0..=MAX_ALLOWLIST)
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect();
        assert!(checked("allowlist", &json!(many)).is_err());
        assert!(checked("mode", &json!("count_per_ip")).is_err());
        assert!(checked("enabled", &json!("true")).is_err());
    }
}
