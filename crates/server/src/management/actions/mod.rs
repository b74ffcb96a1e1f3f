//! `/api/v2/actions/actions`: Auth0 Actions — drafts, deploys (each a new version),
//! rollbacks (an old version's content deployed as a new one) and the Test panel's run.
//! `triggers.rs` serves `/actions/triggers` and their bindings.
//!
//! Secrets are sealed as they arrive (`crate::actions_admin`) and never come back: the
//! shapes list their names only. The operations serve the routes in `http` and the
//! dashboard alike.

pub(crate) mod triggers;

use serde_json::{Map, Value, json};
use tessera_actions::{Job, Trigger};
use tessera_store::{
    ActionFilter, ActionRecord, ActionUpdate, ActionVersionRecord, NewAction, Page, Slice,
    StoreError,
};

use super::auth::Principal;
use super::body::Fields;
use super::error::{ApiError, ApiResult};
use crate::AppState;
use crate::actions_admin as policy;
use crate::clock::now;

pub(crate) const READ: &[&str] = &["read:actions"];
pub(crate) const CREATE: &[&str] = &["create:actions"];
pub(crate) const UPDATE: &[&str] = &["update:actions"];
pub(crate) const DELETE: &[&str] = &["delete:actions"];

/// Bodies that carry code (an action's, a rule's script): 100 kB of code, escaped in
/// JSON, with its secrets, fits.
pub(crate) const MAX_BODY: usize = 1024 * 1024;

pub(crate) const FIELDS: &[&str] = &[
    "name",
    "supported_triggers",
    "code",
    "dependencies",
    "runtime",
    "secrets",
];

fn not_found() -> ApiError {
    ApiError::not_found("The action does not exist", "inexistent_action")
}

fn version_not_found() -> ApiError {
    ApiError::not_found(
        "The action version does not exist",
        "inexistent_action_version",
    )
}

fn name_taken() -> ApiError {
    ApiError::conflict(
        "An action with the same name already exists",
        "action_conflict",
    )
    .about("name")
}

/// The action with this id.
pub(crate) async fn find(state: &AppState, id: &str) -> ApiResult<ActionRecord> {
    state.store().find_action(id).await?.ok_or_else(not_found)
}

/// `supported_triggers`: exactly one of Tessera's triggers.
fn supported_trigger(value: Value) -> ApiResult<Trigger> {
    let property = "supported_triggers";
    let Value::Array(items) = value else {
        return Err(ApiError::invalid_property("Expected type array", property));
    };
    let [item] = items.as_slice() else {
        return Err(ApiError::invalid_property(
            "Tessera's actions support exactly one trigger",
            property,
        ));
    };
    let Value::Object(map) = item else {
        return Err(ApiError::invalid_property(
            "Expected type object",
            "supported_triggers[0]",
        ));
    };
    let mut fields = Fields::from_map(map.clone(), &["id", "version", "status", "runtimes"])
        .map_err(|error| error.about(property))?;
    let id = Fields::required("id", fields.string("id")?)
        .map_err(|_| ApiError::invalid_property("Missing required property: id", property))?;
    let version = fields.string("version")?;
    policy::trigger(&id, version.as_deref())
        .map_err(|why| ApiError::bad_request(why).about(property))
}

/// `secrets`: a list of objects (empty is fine: it removes every secret).
fn secret_items(fields: &mut Fields) -> ApiResult<Option<Vec<Fields>>> {
    let items = match fields.take("secrets") {
        None => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ApiError::invalid_property("Expected type array", "secrets")),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let property = format!("secrets[{index}]");
            match item {
                Value::Object(map) => Fields::from_map(map, &["name", "value", "updated_at"])
                    .map_err(|error| error.about(&property)),
                _ => Err(ApiError::invalid_property(
                    "Expected type object",
                    &property,
                )),
            }
        })
        .collect::<ApiResult<Vec<_>>>()
        .map(Some)
}

/// The secrets of a body: names valid and distinct, values within the limits. A value
/// absent keeps the stored one (an update), as Terraform and
/// auth0-deploy-cli send back what they read.
fn secrets_of(
    state: &AppState,
    action_id: &str,
    items: Vec<Fields>,
    existing: &[String],
) -> ApiResult<Vec<(String, Option<Vec<u8>>)>> {
    if items.len() > policy::MAX_SECRETS {
        return Err(ApiError::invalid_property(
            format!("at most {} secrets are allowed", policy::MAX_SECRETS),
            "secrets",
        ));
    }
    let mut out: Vec<(String, Option<Vec<u8>>)> = Vec::with_capacity(items.len());
    for (index, mut item) in items.into_iter().enumerate() {
        let property = format!("secrets[{index}]");
        let name = Fields::required("name", item.string("name")?).map_err(|_| {
            ApiError::invalid_property("Missing required property: name", &property)
        })?;
        let name = policy::secret_name(&name)
            .map_err(|why| ApiError::bad_request(why).about(&property))?;
        if out.iter().any(|(seen, _)| *seen == name) {
            return Err(
                ApiError::bad_request(format!("the secret {name} is listed twice"))
                    .about(&property),
            );
        }
        // Terraform reads `updated_at` back and sends it with the rest.
        let _ = item.take("updated_at");
        let sealed = match item.string("value")? {
            Some(value) => {
                policy::secret_value(&name, &value)
                    .map_err(|why| ApiError::bad_request(why).about(&property))?;
                Some(policy::seal_secret(
                    &state.config().master_key,
                    action_id,
                    &name,
                    &value,
                ))
            }
            None if existing.contains(&name) => None,
            None => {
                return Err(ApiError::bad_request(format!(
                    "the secret {name} is new: give it a value"
                ))
                .about(&property));
            }
        };
        out.push((name, sealed));
    }
    Ok(out)
}

fn code_of(code: &str) -> ApiResult<()> {
    policy::code(code, "the action's code").map_err(|why| ApiError::bad_request(why).about("code"))
}

fn dependencies_of(value: Value) -> ApiResult<Value> {
    policy::dependencies(&value).map_err(|why| ApiError::bad_request(why).about("dependencies"))?;
    Ok(value)
}

fn runtime_of(runtime: &str) -> ApiResult<String> {
    policy::runtime(runtime).map_err(|why| ApiError::bad_request(why).about("runtime"))
}

fn name_of(name: &str) -> ApiResult<String> {
    policy::action_name(name).map_err(|why| ApiError::bad_request(why).about("name"))
}

/// What a list shows: `triggerId`, `actionName`, `deployed`.
pub(crate) async fn list(
    state: &AppState,
    principal: &Principal,
    filter: &ActionFilter,
    slice: Slice,
) -> ApiResult<Page<ActionRecord>> {
    principal.require(READ)?;
    Ok(state.store().list_actions(filter, slice).await?)
}

pub(crate) async fn get(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> ApiResult<ActionRecord> {
    principal.require(READ)?;
    find(state, id).await
}

/// Saves a new action from `fields` (members as in `FIELDS`).
pub(crate) async fn create(
    state: &AppState,
    principal: &Principal,
    mut fields: Fields,
) -> ApiResult<ActionRecord> {
    principal.require(CREATE)?;
    let name = name_of(&Fields::required("name", fields.string("name")?)?)?;
    let trigger = supported_trigger(Fields::required(
        "supported_triggers",
        fields.take("supported_triggers"),
    )?)?;
    let code = fields.string("code")?.unwrap_or_default();
    code_of(&code)?;
    let dependencies = dependencies_of(fields.take("dependencies").unwrap_or(json!([])))?;
    let runtime = match fields.string("runtime")? {
        Some(runtime) => runtime_of(&runtime)?,
        None => policy::DEFAULT_RUNTIME.to_string(),
    };
    let id = policy::new_action_id();
    let secrets = match secret_items(&mut fields)? {
        Some(items) => secrets_of(state, &id, items, &[])?
            .into_iter()
            .filter_map(|(name, sealed)| sealed.map(|sealed| (name, sealed)))
            .collect(),
        None => Vec::new(),
    };
    let action = NewAction {
        id: id.clone(),
        name,
        trigger_id: trigger.id().to_string(),
        trigger_version: trigger.version().to_string(),
        code,
        dependencies,
        runtime,
        secrets,
        now: now(),
    };
    state
        .store()
        .create_action(&action)
        .await
        .map_err(|error| match error {
            StoreError::Conflict("an action with this name") => name_taken(),
            other => other.into(),
        })?;
    find(state, &id).await
}

/// Changes the draft: what `fields` names (members as in `FIELDS`). `secrets`, when
/// given, is the whole list.
pub(crate) async fn update(
    state: &AppState,
    principal: &Principal,
    id: &str,
    mut fields: Fields,
) -> ApiResult<ActionRecord> {
    principal.require(UPDATE)?;
    let action = find(state, id).await?;
    let name = fields.string("name")?.map(|n| name_of(&n)).transpose()?;
    let trigger = fields
        .take("supported_triggers")
        .map(supported_trigger)
        .transpose()?;
    let code = fields.string("code")?;
    if let Some(code) = &code {
        code_of(code)?;
    }
    let dependencies = fields
        .take("dependencies")
        .map(dependencies_of)
        .transpose()?;
    let runtime = fields
        .string("runtime")?
        .map(|r| runtime_of(&r))
        .transpose()?;
    let existing: Vec<String> = action.secrets.iter().map(|s| s.name.clone()).collect();
    let secrets = secret_items(&mut fields)?
        .map(|items| secrets_of(state, &action.id, items, &existing))
        .transpose()?;
    let update = ActionUpdate {
        name,
        trigger: trigger.map(|t| (t.id().to_string(), t.version().to_string())),
        code,
        dependencies,
        runtime,
        secrets,
    };
    state
        .store()
        .update_action(&action.id, &update, now())
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => not_found(),
            StoreError::Conflict("an action with this name") => name_taken(),
            other => other.into(),
        })
}

/// Deletes an action. A bound one is refused unless `force`, which unbinds it.
pub(crate) async fn delete(
    state: &AppState,
    principal: &Principal,
    id: &str,
    force: bool,
) -> ApiResult<()> {
    principal.require(DELETE)?;
    let action = find(state, id).await?;
    state
        .store()
        .delete_action(&action.id, force)
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => not_found(),
            StoreError::Conflict(_) => ApiError::conflict(
                format!(
                    "The action {} is bound to a trigger: unbind it first, or delete with force=true",
                    action.name
                ),
                "action_bound",
            ),
            other => other.into(),
        })?;
    state.action_programs().forget();
    Ok(())
}

/// Deploys the draft as a new version.
pub(crate) async fn deploy(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> ApiResult<(ActionVersionRecord, ActionRecord)> {
    principal.require(CREATE)?;
    let action = find(state, id).await?;
    let version = state
        .store()
        .deploy_action(&action.id, &policy::new_version_id(), now())
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => not_found(),
            other => other.into(),
        })?;
    state.action_programs().forget();
    Ok((version, find(state, id).await?))
}

/// Rollback: deploys `version_id`'s content as a new version.
pub(crate) async fn redeploy(
    state: &AppState,
    principal: &Principal,
    id: &str,
    version_id: &str,
) -> ApiResult<(ActionVersionRecord, ActionRecord)> {
    principal.require(CREATE)?;
    let action = find(state, id).await?;
    let version = state
        .store()
        .redeploy_action_version(&action.id, version_id, &policy::new_version_id(), now())
        .await
        .map_err(|error| match error {
            StoreError::NotFound("action version") => version_not_found(),
            StoreError::NotFound(_) => not_found(),
            other => other.into(),
        })?;
    state.action_programs().forget();
    Ok((version, find(state, id).await?))
}

/// A page of an action's versions, newest first.
pub(crate) async fn versions(
    state: &AppState,
    principal: &Principal,
    id: &str,
    slice: Slice,
) -> ApiResult<(Page<ActionVersionRecord>, ActionRecord)> {
    principal.require(READ)?;
    let action = find(state, id).await?;
    let page = state
        .store()
        .list_action_versions(&action.id, slice)
        .await?;
    Ok((page, action))
}

pub(crate) async fn version(
    state: &AppState,
    principal: &Principal,
    id: &str,
    version_id: &str,
) -> ApiResult<(ActionVersionRecord, ActionRecord)> {
    principal.require(READ)?;
    let action = find(state, id).await?;
    let version = state
        .store()
        .find_action_version(&action.id, version_id)
        .await?
        .ok_or_else(version_not_found)?;
    Ok((version, action))
}

/// The `state` a test run's redirect carries (`api.redirect.encodeToken` puts it in its
/// tokens): not a login's, so `/continue` finds nothing under it.
const TEST_STATE: &str = "test";

/// Runs the action's draft on `event` (the Test panel): Auth0's answer,
/// `{payload: {logs, stats, …}}`, with what the action asked for. Nothing is written.
pub(crate) async fn test(
    state: &AppState,
    principal: &Principal,
    id: &str,
    event: Value,
) -> ApiResult<Value> {
    principal.require(CREATE)?;
    let action = find(state, id).await?;
    let Some(trigger) = Trigger::parse(&action.trigger_id) else {
        return Err(ApiError::bad_request(
            "the action's trigger is not one Tessera runs",
        ));
    };
    let Value::Object(mut event) = event else {
        return Err(ApiError::invalid_property(
            "Expected type object",
            "payload",
        ));
    };
    // Each action gets its own secrets: whatever the payload says of them is dropped.
    event.remove("secrets");
    // A post-login test may redirect: it shows where to, under a state of its own that
    // resumes nothing.
    let redirect = (trigger == Trigger::PostLogin).then(|| tessera_actions::RedirectContext {
        allowed: true,
        state: TEST_STATE.to_string(),
        issuer: crate::actions::issuer_host(state).to_string(),
        subject: event
            .get("user")
            .and_then(|user| user.get("user_id"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        resume_at: None,
        kept_refresh_token_metadata: None,
    });
    let sealed = state.store().action_draft_secrets(&action.id).await?;
    let job = Job {
        trigger,
        event: Value::Object(event),
        rules: Vec::new(),
        configuration: Default::default(),
        actions: vec![tessera_actions::Action {
            id: action.id.clone(),
            name: action.name.clone(),
            code: action.code.clone(),
            secrets: policy::open_secrets_with(&state.config().master_key, &action.id, &sealed),
        }],
        redirect,
    };
    let started = std::time::Instant::now();
    let outcome = state.actions().run(job).await.map_err(|error| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("The action could not be tested: {error}"),
            Some("temporarily_unavailable"),
        )
    })?;
    let elapsed = started.elapsed();
    let logs: String = outcome
        .logs
        .iter()
        .map(|log| log.stdout.as_str())
        .collect::<Vec<_>>()
        .join("");
    let mut commands = Map::new();
    if !outcome.access_token_claims.is_empty() {
        commands.insert(
            "access_token_claims".into(),
            Value::Object(outcome.access_token_claims.clone()),
        );
    }
    if !outcome.id_token_claims.is_empty() {
        commands.insert(
            "id_token_claims".into(),
            Value::Object(outcome.id_token_claims.clone()),
        );
    }
    if !outcome.added_scopes.is_empty() {
        commands.insert("added_scopes".into(), json!(outcome.added_scopes));
    }
    if !outcome.removed_scopes.is_empty() {
        commands.insert("removed_scopes".into(), json!(outcome.removed_scopes));
    }
    if !outcome.app_metadata.is_empty() {
        commands.insert(
            "app_metadata".into(),
            Value::Object(outcome.app_metadata.clone()),
        );
    }
    if !outcome.user_metadata.is_empty() {
        commands.insert(
            "user_metadata".into(),
            Value::Object(outcome.user_metadata.clone()),
        );
    }
    if let Some(redirect) = &outcome.redirect {
        commands.insert("redirect".into(), json!({ "url": redirect.url }));
    }
    if let Some(denied) = &outcome.denied {
        commands.insert(
            "access_denied".into(),
            json!({"code": denied.code, "reason": denied.reason, "user_message": denied.user_message}),
        );
        if denied.revoke_refresh_token {
            commands.insert(
                "refresh_token".into(),
                json!({"revoked": true, "reason": denied.reason}),
            );
        }
        if let Some(keep) = denied.end_session {
            commands.insert(
                "session".into(),
                json!({"revoked": true, "reason": denied.reason, "preserve_refresh_tokens": keep}),
            );
        }
    }
    // What the action asked of the browser's session (its event must have one for the
    // metadata): the metadata as it leaves it, the ends it asked (ms).
    let mut session = Map::new();
    if let Some(metadata) = &outcome.session_metadata {
        session.insert("metadata".into(), json!(metadata));
    }
    for (name, asked) in [
        ("expires_at", outcome.session_expires_at),
        ("idle_expires_at", outcome.session_idle_expires_at),
    ] {
        if let Some(at) = asked {
            session.insert(name.into(), json!(at));
        }
    }
    // And of the refresh token: the metadata it leaves it (the exchanged token's when the
    // test event has a `refresh_token`, else the one a login issues).
    let mut refresh_token = Map::new();
    if let Some(metadata) = &outcome.refresh_token_metadata {
        refresh_token.insert("metadata".into(), json!(metadata));
    }
    for (name, asked) in [("session", session), ("refresh_token", refresh_token)] {
        if asked.is_empty() {
            continue;
        }
        let shown = commands
            .entry(name)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(shown) = shown.as_object_mut() {
            shown.extend(asked);
        }
    }
    let error = outcome
        .failed
        .as_ref()
        .map(|failure| json!({"message": failure.message}));
    let mut payload = json!({
        "logs": logs,
        "stats": {
            "action_duration_ms": elapsed.as_millis() as u64,
            "total_request_duration_ms": elapsed.as_millis() as u64,
        },
        "commands": commands,
    });
    if let Some(error) = error {
        payload["error"] = error;
    }
    Ok(json!({ "payload": payload }))
}

/// The routes: wire formats around the operations above.
pub(crate) mod http {
    use axum::Json;
    use axum::body::Bytes;
    use axum::extract::rejection::BytesRejection;
    use axum::extract::{Path, RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use serde_json::json;
    use tessera_store::ActionFilter;

    use super::super::auth::require;
    use super::super::body;
    use super::super::error::{ApiError, ApiResult};
    use super::super::paging::Query;
    use super::super::wire;
    use super::{CREATE, DELETE, FIELDS, READ, UPDATE};
    use crate::AppState;

    /// `{<key>: […], total, page, per_page}`: how the Actions API pages, always.
    pub(crate) fn paged(
        items: Vec<serde_json::Value>,
        key: &str,
        total: u64,
        page: u64,
        per_page: u32,
    ) -> Response {
        Json(json!({ key: items, "total": total, "page": page, "per_page": per_page }))
            .into_response()
    }

    /// `GET /api/v2/actions/actions`: `triggerId`, `actionName`, `deployed`, `page`,
    /// `per_page` (`include_totals` and `installed` are accepted and change nothing).
    pub(crate) async fn list(
        State(state): State<AppState>,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let query = Query::parse(
            query.as_deref(),
            &[
                "triggerId",
                "actionName",
                "deployed",
                "installed",
                "page",
                "per_page",
                "include_totals",
            ],
        )?;
        let mut paging = query.paging()?;
        paging.include_totals = true;
        let filter = ActionFilter {
            trigger_id: query.get("triggerId").map(str::to_string),
            name: query.get("actionName").map(str::to_string),
            deployed: query.boolean("deployed")?,
        };
        if query.boolean("installed")? == Some(true) {
            // Tessera has no marketplace integrations: none is installed.
            return Ok(paged(
                Vec::new(),
                "actions",
                0,
                paging.page,
                paging.per_page,
            ));
        }
        let page = super::list(&state, &principal, &filter, paging.slice()).await?;
        let items = page
            .items
            .iter()
            .map(|action| json!(wire::action(action)))
            .collect();
        Ok(paged(
            items,
            "actions",
            page.total.unwrap_or(0),
            paging.page,
            paging.per_page,
        ))
    }

    pub(crate) async fn get(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let action = super::get(&state, &principal, &id).await?;
        Ok(Json(wire::action(&action)).into_response())
    }

    pub(crate) async fn create(
        State(state): State<AppState>,
        headers: HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, CREATE).await?;
        let fields = body::object(&headers, body, FIELDS)?;
        let action = super::create(&state, &principal, fields).await?;
        Ok((StatusCode::CREATED, Json(wire::action(&action))).into_response())
    }

    pub(crate) async fn update(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE).await?;
        let fields = body::object(&headers, body, FIELDS)?;
        let action = super::update(&state, &principal, &id, fields).await?;
        Ok(Json(wire::action(&action)).into_response())
    }

    /// `DELETE …/{id}[?force=true]`.
    pub(crate) async fn delete(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, DELETE).await?;
        let query = Query::parse(query.as_deref(), &["force"])?;
        let force = query.boolean("force")?.unwrap_or(false);
        super::delete(&state, &principal, &id, force).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    pub(crate) async fn deploy(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, CREATE).await?;
        let (version, action) = super::deploy(&state, &principal, &id).await?;
        Ok((
            StatusCode::CREATED,
            Json(wire::action_version(&version, &action, true)),
        )
            .into_response())
    }

    pub(crate) async fn versions(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let query = Query::parse(query.as_deref(), &["page", "per_page", "include_totals"])?;
        let mut paging = query.paging()?;
        paging.include_totals = true;
        let (page, action) = super::versions(&state, &principal, &id, paging.slice()).await?;
        let items = page
            .items
            .iter()
            .map(|version| json!(wire::action_version(version, &action, true)))
            .collect();
        Ok(paged(
            items,
            "versions",
            page.total.unwrap_or(0),
            paging.page,
            paging.per_page,
        ))
    }

    pub(crate) async fn version(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path((id, version_id)): Path<(String, String)>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let (version, action) = super::version(&state, &principal, &id, &version_id).await?;
        Ok(Json(wire::action_version(&version, &action, true)).into_response())
    }

    /// `POST …/{id}/versions/{versionId}/deploy`: rollback. Auth0 accepts an optional
    /// `{update_draft}` body; Tessera leaves the draft as it is.
    pub(crate) async fn redeploy(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path((id, version_id)): Path<(String, String)>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, CREATE).await?;
        let (version, action) = super::redeploy(&state, &principal, &id, &version_id).await?;
        Ok((
            StatusCode::CREATED,
            Json(wire::action_version(&version, &action, true)),
        )
            .into_response())
    }

    /// `POST …/{id}/test` `{payload: <event>}`.
    pub(crate) async fn test(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, CREATE).await?;
        let mut fields = body::object(&headers, body, &["payload"])?;
        let event = super::super::Fields::required("payload", fields.take("payload"))?;
        if !event.is_object() {
            return Err(ApiError::invalid_property(
                "Expected type object",
                "payload",
            ));
        }
        let answer = super::test(&state, &principal, &id, event).await?;
        Ok(Json(answer).into_response())
    }
}
