//! Route rules: which requests need no token, and what the others need beyond a valid one.
//!
//! A rule is written `[METHOD ]PREFIX` (public) or `[METHOD ]PREFIX=VALUE,VALUE` (scopes or
//! permissions, all of them required; an empty list asks for a valid token only). The most
//! specific matching rule decides alone — the longest prefix, counted in whole segments,
//! and at equal length a rule naming the method over one that does not. Rules do not
//! accumulate: `/api=read` and `/api/admin=write` ask `/api/admin/x` for `write` only.
//! A path no rule matches needs a valid token.
//!
//! A request the upstream may read in more than one way (a method override, a format
//! suffix: see `request.rs`) must meet the rules of each reading: [`Access::and`].

use axum::http::Method;
use tessera_guard::Requirement;

use crate::path::{CanonicalPath, PathError};

/// A rule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("rule {rule:?}: the prefix must be a path starting with /")]
    NotAPath { rule: String },
    #[error("rule {rule:?}: the prefix is ambiguous ({reason})")]
    AmbiguousPrefix { rule: String, reason: PathError },
    #[error("rule {rule:?}: {method:?} is not an HTTP method (write it in upper case)")]
    BadMethod { rule: String, method: String },
    #[error("rule {rule:?}: expected PREFIX=VALUE,VALUE (e.g. /api/admin=write:messages)")]
    MissingEquals { rule: String },
    #[error("rule {rule:?}: a public rule takes no scopes")]
    UnexpectedEquals { rule: String },
    #[error("rule {rule:?}: {value:?} is not a scope or permission name")]
    BadValue { rule: String, value: String },
    #[error("two rules for {target}: {first:?} and {second:?}")]
    Conflict {
        target: String,
        first: String,
        second: String,
    },
}

/// What the matched rule asks of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access<'r> {
    /// Forwarded without looking at any token.
    Public,
    /// A valid token that meets every one of these (none: any valid token).
    Token(Vec<&'r Requirement>),
}

impl<'r> Access<'r> {
    /// What meets both: public only when both are, else a token meeting the requirements
    /// of each.
    pub fn and(self, other: Access<'r>) -> Access<'r> {
        match (self, other) {
            (Access::Public, other) | (other, Access::Public) => other,
            (Access::Token(mut requirements), Access::Token(more)) => {
                for requirement in more {
                    if !requirements.contains(&requirement) {
                        requirements.push(requirement);
                    }
                }
                Access::Token(requirements)
            }
        }
    }
}

/// The route rules of one proxy.
#[derive(Debug, Clone, Default)]
pub struct RouteRules {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    method: Option<Method>,
    prefix: CanonicalPath,
    kind: RuleKind,
    /// As written, for error messages.
    text: String,
}

#[derive(Debug, Clone)]
enum RuleKind {
    Public,
    Token {
        /// Where each requirement came from, so a second rule of the same kind conflicts.
        scopes: Option<String>,
        permissions: Option<String>,
        requirements: Vec<Requirement>,
    },
}

/// Which claim a `--require…` rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    Scope,
    Permissions,
}

impl RouteRules {
    pub fn new() -> RouteRules {
        RouteRules::default()
    }

    /// `[METHOD ]PREFIX`: forwarded without a token (e.g. `/health`, `GET /api/docs`).
    pub fn add_public(&mut self, rule: &str) -> Result<(), RuleError> {
        let (method, prefix, values) = split_rule(rule)?;
        if values.is_some() {
            return Err(RuleError::UnexpectedEquals { rule: rule.into() });
        }
        self.insert(method, prefix, rule, RuleKind::Public)
    }

    /// `[METHOD ]PREFIX=SCOPE,SCOPE`: a token whose `scope` has all of them.
    pub fn add_required_scopes(&mut self, rule: &str) -> Result<(), RuleError> {
        self.add_requirement(rule, Claim::Scope)
    }

    /// `[METHOD ]PREFIX=PERMISSION,PERMISSION`: a token whose `permissions` (RBAC) has all of them.
    pub fn add_required_permissions(&mut self, rule: &str) -> Result<(), RuleError> {
        self.add_requirement(rule, Claim::Permissions)
    }

    /// What the most specific rule matching the request asks (see the module docs).
    /// A `GET` rule covers `HEAD` too, as routers answer `HEAD` with the `GET` handler.
    pub fn access(&self, method: &Method, path: &CanonicalPath) -> Access<'_> {
        let method_matches =
            |rule: &Method| rule == method || (*rule == Method::GET && *method == Method::HEAD);
        let best = self
            .rules
            .iter()
            .filter(|rule| {
                rule.method.as_ref().is_none_or(method_matches) && path.starts_with(&rule.prefix)
            })
            .max_by_key(|rule| (rule.prefix.depth(), rule.method.is_some()));
        match best.map(|rule| &rule.kind) {
            None => Access::Token(Vec::new()),
            Some(RuleKind::Public) => Access::Public,
            Some(RuleKind::Token { requirements, .. }) => {
                Access::Token(requirements.iter().collect())
            }
        }
    }

    fn add_requirement(&mut self, rule: &str, claim: Claim) -> Result<(), RuleError> {
        let (method, prefix, values) = split_rule(rule)?;
        let values = values.ok_or_else(|| RuleError::MissingEquals { rule: rule.into() })?;
        let values = parse_values(rule, values)?;
        let requirement = match claim {
            Claim::Scope => Requirement::all_scopes(values),
            Claim::Permissions => Requirement::all_permissions(values),
        };
        let (scopes, permissions) = match claim {
            Claim::Scope => (Some(rule.to_owned()), None),
            Claim::Permissions => (None, Some(rule.to_owned())),
        };
        self.insert(
            method,
            prefix,
            rule,
            RuleKind::Token {
                scopes,
                permissions,
                requirements: vec![requirement],
            },
        )
    }

    /// Adds a rule; a scope rule and a permission rule for the same target combine, any
    /// other pair for one target is a conflict.
    fn insert(
        &mut self,
        method: Option<Method>,
        prefix: CanonicalPath,
        text: &str,
        kind: RuleKind,
    ) -> Result<(), RuleError> {
        let Some(existing) = self
            .rules
            .iter_mut()
            .find(|rule| rule.method == method && rule.prefix == prefix)
        else {
            self.rules.push(Rule {
                method,
                prefix,
                kind,
                text: text.to_owned(),
            });
            return Ok(());
        };
        let conflict = |existing: &Rule| RuleError::Conflict {
            target: match &method {
                Some(method) => format!("{method} {prefix}"),
                None => prefix.to_string(),
            },
            first: existing.text.clone(),
            second: text.to_owned(),
        };
        match (&mut existing.kind, kind) {
            (
                RuleKind::Token {
                    scopes,
                    permissions,
                    requirements,
                },
                RuleKind::Token {
                    scopes: new_scopes,
                    permissions: new_permissions,
                    requirements: new_requirements,
                },
            ) if (scopes.is_none() || new_scopes.is_none())
                && (permissions.is_none() || new_permissions.is_none()) =>
            {
                *scopes = scopes.take().or(new_scopes);
                *permissions = permissions.take().or(new_permissions);
                requirements.extend(new_requirements);
                existing.text = format!("{} + {text}", existing.text);
                Ok(())
            }
            _ => Err(conflict(existing)),
        }
    }
}

/// `[METHOD ]PREFIX[=VALUES]` → its parts.
fn split_rule(rule: &str) -> Result<(Option<Method>, CanonicalPath, Option<&str>), RuleError> {
    let (target, values) = match rule.split_once('=') {
        Some((target, values)) => (target, Some(values)),
        None => (rule, None),
    };
    let target = target.trim();
    let (method, prefix) = match target.split_once(' ') {
        Some((method, prefix)) => (Some(parse_method(rule, method)?), prefix.trim()),
        None => (None, target),
    };
    if !prefix.starts_with('/') {
        return Err(RuleError::NotAPath { rule: rule.into() });
    }
    let prefix = CanonicalPath::parse(prefix).map_err(|reason| RuleError::AmbiguousPrefix {
        rule: rule.into(),
        reason,
    })?;
    Ok((method, prefix, values))
}

fn parse_method(rule: &str, method: &str) -> Result<Method, RuleError> {
    let bad = || RuleError::BadMethod {
        rule: rule.into(),
        method: method.into(),
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad());
    }
    Method::from_bytes(method.as_bytes()).map_err(|_| bad())
}

fn parse_values(rule: &str, values: &str) -> Result<Vec<String>, RuleError> {
    values
        .split(',')
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(|value| {
            // Scope names are RFC 6749 scope-tokens: visible ASCII except `"` and `\`.
            if value
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
            {
                Ok(value.to_owned())
            } else {
                Err(RuleError::BadValue {
                    rule: rule.into(),
                    value: value.into(),
                })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(public: &[&str], scopes: &[&str], permissions: &[&str]) -> RouteRules {
        let mut rules = RouteRules::new();
        for rule in public {
            rules.add_public(rule).unwrap();
        }
        for rule in scopes {
            rules.add_required_scopes(rule).unwrap();
        }
        for rule in permissions {
            rules.add_required_permissions(rule).unwrap();
        }
        rules
    }

    /// What the rules ask, with the requirements copied out (`None`: public).
    fn access(rules: &RouteRules, method: &str, path: &str) -> Option<Vec<Requirement>> {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let path = CanonicalPath::parse(path).unwrap();
        owned(rules.access(&method, &path))
    }

    fn owned(access: Access<'_>) -> Option<Vec<Requirement>> {
        match access {
            Access::Public => None,
            Access::Token(requirements) => Some(requirements.into_iter().cloned().collect()),
        }
    }

    fn token(requirements: &[Requirement]) -> Option<Vec<Requirement>> {
        Some(requirements.to_vec())
    }

    #[test]
    fn the_most_specific_rule_decides_alone() {
        let rules = rules(
            &["/health", "/api/public", "GET /api/docs"],
            &[
                "/api=read:messages",
                "POST /api/admin=write:messages",
                "/api/me=",
            ],
            &[
                "/api/admin=admin:all",
                "DELETE /api/admin=admin:all,delete:things",
            ],
        );
        let read = Requirement::all_scopes(["read:messages"]);
        assert_eq!(access(&rules, "GET", "/"), token(&[]));
        assert_eq!(access(&rules, "GET", "/other"), token(&[]));
        assert_eq!(access(&rules, "GET", "/health"), None);
        assert_eq!(access(&rules, "POST", "/health/deep"), None);
        assert_eq!(access(&rules, "GET", "/healthz"), token(&[]));
        assert_eq!(access(&rules, "GET", "/api/public/x"), None);
        assert_eq!(access(&rules, "GET", "/API/Public"), None);
        assert_eq!(access(&rules, "GET", "/api/docs"), None);
        assert_eq!(access(&rules, "HEAD", "/api/docs"), None);
        assert_eq!(
            access(&rules, "POST", "/api/docs"),
            token(std::slice::from_ref(&read))
        );
        assert_eq!(
            access(&rules, "GET", "/api/private"),
            token(std::slice::from_ref(&read))
        );
        assert_eq!(
            access(&rules, "GET", "/api/me"),
            token(&[Requirement::all_scopes::<[&str; 0]>([])])
        );
        assert_eq!(
            access(&rules, "GET", "/api/admin"),
            token(&[Requirement::all_permissions(["admin:all"])])
        );
        assert_eq!(
            access(&rules, "POST", "/api/admin/users"),
            token(&[Requirement::all_scopes(["write:messages"])])
        );
        assert_eq!(
            access(&rules, "DELETE", "/api/admin"),
            token(&[Requirement::all_permissions(["admin:all", "delete:things"])])
        );
    }

    #[test]
    fn scope_and_permission_rules_for_one_target_combine() {
        let rules = rules(
            &[],
            &["POST /api/admin=write:messages"],
            &["POST /api/admin=admin"],
        );
        assert_eq!(
            access(&rules, "POST", "/api/admin"),
            token(&[
                Requirement::all_scopes(["write:messages"]),
                Requirement::all_permissions(["admin"])
            ])
        );
    }

    #[test]
    fn bad_and_conflicting_rules_are_refused() {
        let mut rules = RouteRules::new();
        assert!(matches!(
            rules.add_public("api"),
            Err(RuleError::NotAPath { .. })
        ));
        assert!(matches!(
            rules.add_public("/a/../b"),
            Err(RuleError::AmbiguousPrefix { .. })
        ));
        assert!(matches!(
            rules.add_public("get /a"),
            Err(RuleError::BadMethod { .. })
        ));
        assert!(matches!(
            rules.add_public("/a=read"),
            Err(RuleError::UnexpectedEquals { .. })
        ));
        assert!(matches!(
            rules.add_required_scopes("/a"),
            Err(RuleError::MissingEquals { .. })
        ));
        assert!(matches!(
            rules.add_required_scopes("/a=read messages\""),
            Err(RuleError::BadValue { .. })
        ));
        rules.add_public("/a").unwrap();
        assert_eq!(
            rules
                .add_required_scopes("/A/=read")
                .unwrap_err()
                .to_string(),
            r#"two rules for /a: "/a" and "/A/=read""#
        );
        rules.add_required_scopes("/b=read").unwrap();
        assert!(matches!(
            rules.add_required_scopes("/b=write"),
            Err(RuleError::Conflict { .. })
        ));
        rules.add_required_scopes("GET /b=write").unwrap();
    }
}
