//! Actions → Library and Triggers: the actions list, Create Action, an action's tabs —
//! Code (the draft and its secrets, Save Draft, Deploy), Test (a sample event run on the
//! draft), Versions (history, roll back) — and each trigger's ordered bindings. Every
//! change is an operation of `management::actions` or `management::actions::triggers`.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};
use tessera_actions::Trigger;
use tessera_store::{ActionFilter, ActionRecord, ActionVersionRecord, BindingRecord, Slice};

use super::Deletion;
use super::session::{Admin, AdminCodeForm, AdminForm};
use super::views::{self, Frame, Tab};
use super::{Paging, notice_of, query_of};
use crate::AppState;
use crate::edge::params::Params;
use crate::management::actions::{self as operations, triggers};
use crate::management::{ApiError, Fields};
use crate::pages::redirect;

const PER_PAGE: u32 = 20;

/// A trigger's bindings, all of them: the API binds at most this many.
const BINDINGS_SHOWN: u32 = triggers::MAX_BINDINGS as u32;

fn action_path(action: &ActionRecord, tab: &str) -> String {
    if tab.is_empty() {
        format!("/admin/actions/{}", action.id)
    } else {
        format!("/admin/actions/{}/{tab}", action.id)
    }
}

fn tabs(action: &ActionRecord, current: &str) -> Vec<Tab> {
    views::tabs(
        &action_path(action, ""),
        &[("", "Code"), ("test", "Test"), ("versions", "Versions")],
        current,
    )
}

/// What a new action's editor starts with: the trigger's handler, empty.
fn starter_code(trigger: Trigger) -> String {
    let handler = trigger.handler();
    format!(
        "/**\n * Handler that will be called during the execution of a {} flow.\n */\nexports.{handler} = async (event, api) => {{\n}};\n",
        trigger.id()
    )
}

/// One row of the library.
struct Row {
    id: String,
    name: String,
    trigger: String,
    status: &'static str,
}

fn status_of(action: &ActionRecord) -> &'static str {
    match (&action.deployed_version, action.all_changes_deployed) {
        (None, _) => "Draft",
        (Some(_), true) => "Deployed",
        (Some(_), false) => "Deployed, with undeployed changes",
    }
}

#[derive(Template)]
#[template(path = "admin/actions.html")]
struct ListPage<'a> {
    frame: Frame<'a>,
    rows: Vec<Row>,
    paging: Paging,
    can_create: bool,
}

/// `GET /admin/actions`: the library.
pub(crate) async fn list(
    State(state): State<AppState>,
    admin: Admin,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query_of(query);
    let paging = Paging::from_query(&query, PER_PAGE);
    let filter = ActionFilter::default();
    let page = match operations::list(&state, &admin.principal, &filter, paging.slice()).await {
        Ok(page) => page,
        Err(error) => return views::operation_refused(&error),
    };
    views::page(&ListPage {
        frame: Frame::new(&state, &admin, "actions", notice_of(&query)),
        paging: paging.with_total(page.total),
        rows: page
            .items
            .iter()
            .map(|action| Row {
                id: action.id.clone(),
                name: action.name.clone(),
                trigger: action.trigger_id.clone(),
                status: status_of(action),
            })
            .collect(),
        can_create: admin.may("create:actions"),
    })
}

#[derive(Template)]
#[template(path = "admin/action_new.html")]
struct NewPage<'a> {
    frame: Frame<'a>,
    name: String,
    /// Each trigger, and whether it is the one chosen.
    triggers: Vec<(&'static str, bool)>,
    error: Option<super::form::FormError>,
}

impl NewPage<'_> {
    fn error_on(&self, field: &str) -> Option<&str> {
        super::form::error_on(&self.error, field)
    }
}

fn trigger_choices(chosen: &str) -> Vec<(&'static str, bool)> {
    Trigger::ALL
        .iter()
        .map(|trigger| (trigger.id(), trigger.id() == chosen))
        .collect()
}

/// `GET /admin/actions/new`: Create Action.
pub(crate) async fn new(
    State(state): State<AppState>,
    admin: Admin,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query_of(query);
    views::page(&NewPage {
        frame: Frame::new(&state, &admin, "actions", None),
        name: String::new(),
        triggers: trigger_choices(query.get("trigger").unwrap_or("post-login")),
        error: None,
    })
}

/// `POST /admin/actions`: creates the draft with the trigger's empty handler.
pub(crate) async fn create(State(state): State<AppState>, form: AdminForm) -> Response {
    let params = &form.params;
    let name = params.get("name").unwrap_or("").to_string();
    let trigger_id = params.get("trigger").unwrap_or("").to_string();
    let result = match Trigger::parse(&trigger_id) {
        None => Err(ApiError::invalid_property(
            "Choose one of the triggers",
            "trigger",
        )),
        Some(trigger) => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            body.insert(
                "supported_triggers".into(),
                json!([{"id": trigger.id(), "version": trigger.version()}]),
            );
            body.insert("code".into(), json!(starter_code(trigger)));
            match Fields::from_map(body, operations::FIELDS) {
                Ok(fields) => operations::create(&state, &form.admin.principal, fields).await,
                Err(error) => Err(error),
            }
        }
    };
    match result {
        Ok(action) => redirect(&format!(
            "{}?notice=action_created",
            action_path(&action, "")
        )),
        Err(error)
            if error.status == StatusCode::BAD_REQUEST || error.status == StatusCode::CONFLICT =>
        {
            views::form_again(&NewPage {
                frame: Frame::new(&state, &form.admin, "actions", None),
                name,
                triggers: trigger_choices(&trigger_id),
                error: Some(error.into()),
            })
        }
        Err(error) => views::operation_refused(&error),
    }
}

async fn load(state: &AppState, admin: &Admin, id: &str) -> Result<ActionRecord, Response> {
    operations::get(state, &admin.principal, id)
        .await
        .map_err(|error| views::operation_refused(&error))
}

#[derive(Template)]
#[template(path = "admin/action_code.html")]
struct CodePage<'a> {
    frame: Frame<'a>,
    action: ActionRecord,
    tabs: Vec<Tab>,
    status: &'static str,
    code: String,
    can_update: bool,
    can_deploy: bool,
    can_delete: bool,
    error: Option<super::form::FormError>,
}

impl CodePage<'_> {
    fn error_on(&self, field: &str) -> Option<&str> {
        super::form::error_on(&self.error, field)
    }
}

/// `GET /admin/actions/{id}`: the editor.
pub(crate) async fn code(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let action = match load(&state, &admin, &id).await {
        Ok(action) => action,
        Err(response) => return response,
    };
    let query = query_of(query);
    views::page(&CodePage {
        frame: Frame::new(&state, &admin, "actions", notice_of(&query)),
        tabs: tabs(&action, ""),
        status: status_of(&action),
        code: action.code.clone(),
        can_update: admin.may("update:actions"),
        can_deploy: admin.may("create:actions"),
        can_delete: admin.may("delete:actions"),
        action,
        error: None,
    })
}

/// The draft as the form sets it: the code, the secrets kept (every listed one not ticked
/// for removal, by name: their values stay sealed where they are) and a new or replaced one.
fn draft_body(action: &ActionRecord, params: &Params) -> Result<Fields, ApiError> {
    let removed = params.names_after("remove_secret:");
    let mut secrets: Vec<Value> = action
        .secrets
        .iter()
        .filter(|secret| !removed.contains(&secret.name.as_str()))
        .map(|secret| json!({"name": secret.name}))
        .collect();
    let new_name = params.get("secret_name").unwrap_or("").trim();
    if !new_name.is_empty() {
        secrets.retain(|secret| secret["name"] != new_name);
        secrets.push(json!({"name": new_name, "value": params.get("secret_value").unwrap_or("")}));
    }
    let mut body = Map::new();
    body.insert("code".into(), json!(params.get("code").unwrap_or("")));
    body.insert("secrets".into(), Value::Array(secrets));
    Fields::from_map(body, operations::FIELDS)
}

/// `POST /admin/actions/{id}`: Save Draft.
pub(crate) async fn save(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminCodeForm(form): AdminCodeForm,
) -> Response {
    let action = match load(&state, &form.admin, &id).await {
        Ok(action) => action,
        Err(response) => return response,
    };
    let result = match draft_body(&action, &form.params) {
        Ok(fields) => operations::update(&state, &form.admin.principal, &action.id, fields).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(action) => redirect(&format!("{}?notice=action_saved", action_path(&action, ""))),
        Err(error) if error.status == StatusCode::BAD_REQUEST => views::form_again(&CodePage {
            frame: Frame::new(&state, &form.admin, "actions", None),
            tabs: tabs(&action, ""),
            status: status_of(&action),
            code: form.params.get("code").unwrap_or("").to_string(),
            can_update: true,
            can_deploy: form.admin.may("create:actions"),
            can_delete: form.admin.may("delete:actions"),
            action,
            error: Some(error.into()),
        }),
        Err(error) => views::operation_refused(&error),
    }
}

/// `POST /admin/actions/{id}/deploy`: the draft becomes a new version.
pub(crate) async fn deploy(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    match operations::deploy(&state, &form.admin.principal, &id).await {
        Ok((_, action)) => redirect(&format!(
            "{}?notice=action_deployed",
            action_path(&action, "")
        )),
        Err(error) => views::operation_refused(&error),
    }
}

/// `POST /admin/actions/{id}/delete` (the name typed again; after a fresh login). A bound
/// action is refused with the API's message: unbind it first.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let action = match load(&state, &form.admin, &id).await {
        Ok(action) => action,
        Err(response) => return response,
    };
    match Deletion::of(&form, &action_path(&action, ""), &action.name) {
        Deletion::Confirmed => {}
        Deletion::SignInAgain(response) => return response,
        Deletion::Mistyped => {
            return views::refused(
                StatusCode::BAD_REQUEST,
                "Type the action's name exactly to delete it.",
            );
        }
    }
    match operations::delete(&state, &form.admin.principal, &action.id, false).await {
        Ok(()) => redirect("/admin/actions?notice=action_deleted"),
        Err(error) => views::operation_refused(&error),
    }
}

#[derive(Template)]
#[template(path = "admin/action_test.html")]
struct TestPage<'a> {
    frame: Frame<'a>,
    action: ActionRecord,
    tabs: Vec<Tab>,
    event: String,
    result: Option<String>,
    can_test: bool,
    error: Option<String>,
}

/// A sample event for `trigger` in Auth0's shape, for the Test tab to start from.
fn sample_event(trigger: Trigger) -> Value {
    let user = json!({
        "user_id": "auth0|5f7c8ec7c33c6c004bbafe82",
        "email": "j+smith@example.com",
        "email_verified": true,
        "name": "J Smith",
        "app_metadata": {},
        "user_metadata": {},
    });
    let client = json!({"client_id": "sample-client-id", "name": "My App", "metadata": {}});
    let request = json!({
        "ip": "203.0.113.7",
        "method": "POST",
        "user_agent": "Mozilla/5.0",
        "query": {},
        "body": {},
    });
    match trigger {
        Trigger::PostLogin => json!({
            "user": user,
            "client": client,
            "request": request,
            "authorization": {"roles": ["admin"]},
            "resource_server": {"identifier": "https://my-api.example.com"},
            "transaction": {
                "protocol": "oidc-basic-profile",
                "requested_scopes": ["openid", "profile"],
            },
            "stats": {"logins_count": 3},
            "authentication": {"methods": [{"name": "pwd"}]},
        }),
        Trigger::CredentialsExchange => json!({
            "client": client,
            "request": request,
            "resource_server": {"identifier": "https://my-api.example.com"},
            "transaction": {"requested_scopes": ["read:messages"]},
        }),
        _ => json!({"user": user, "client": client, "request": request}),
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// `GET /admin/actions/{id}/test`.
pub(crate) async fn test(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Response {
    let action = match load(&state, &admin, &id).await {
        Ok(action) => action,
        Err(response) => return response,
    };
    let event = Trigger::parse(&action.trigger_id)
        .map(sample_event)
        .unwrap_or_else(|| json!({}));
    views::page(&TestPage {
        frame: Frame::new(&state, &admin, "actions", None),
        tabs: tabs(&action, "test"),
        action,
        event: pretty(&event),
        result: None,
        can_test: admin.may("create:actions"),
        error: None,
    })
}

/// `POST /admin/actions/{id}/test`: runs the draft on the event given; nothing is
/// written, as the API's Test.
pub(crate) async fn run_test(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminCodeForm(form): AdminCodeForm,
) -> Response {
    let action = match load(&state, &form.admin, &id).await {
        Ok(action) => action,
        Err(response) => return response,
    };
    let text = form.params.get("event").unwrap_or("").to_string();
    let outcome = match serde_json::from_str::<Value>(&text) {
        Ok(event) => match operations::test(&state, &form.admin.principal, &action.id, event).await
        {
            Ok(result) => Ok(result),
            Err(error) if error.status == StatusCode::BAD_REQUEST => Err(error.message),
            Err(error) => return views::operation_refused(&error),
        },
        Err(error) => Err(format!("The event is not JSON: {error}")),
    };
    let (result, error, status) = match outcome {
        Ok(result) => (Some(pretty(&result["payload"])), None, StatusCode::OK),
        Err(message) => (None, Some(message), StatusCode::BAD_REQUEST),
    };
    let page = TestPage {
        frame: Frame::new(&state, &form.admin, "actions", None),
        tabs: tabs(&action, "test"),
        action,
        event: text,
        result,
        can_test: true,
        error,
    };
    if status == StatusCode::OK {
        views::page(&page)
    } else {
        views::form_again(&page)
    }
}

#[derive(Template)]
#[template(path = "admin/action_versions.html")]
struct VersionsPage<'a> {
    frame: Frame<'a>,
    action: ActionRecord,
    tabs: Vec<Tab>,
    versions: Vec<ActionVersionRecord>,
    paging: Paging,
    can_deploy: bool,
}

/// `GET /admin/actions/{id}/versions`: newest first.
pub(crate) async fn versions(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query_of(query);
    let paging = Paging::from_query(&query, PER_PAGE);
    let (page, action) =
        match operations::versions(&state, &admin.principal, &id, paging.slice()).await {
            Ok(found) => found,
            Err(error) => return views::operation_refused(&error),
        };
    views::page(&VersionsPage {
        frame: Frame::new(&state, &admin, "actions", notice_of(&query)),
        tabs: tabs(&action, "versions"),
        action,
        paging: paging.with_total(page.total),
        versions: page.items,
        can_deploy: admin.may("create:actions"),
    })
}

/// `POST /admin/actions/{id}/versions/{version}/deploy`: roll back to that version (its
/// code deployed as a new version).
pub(crate) async fn roll_back(
    State(state): State<AppState>,
    Path((id, version)): Path<(String, String)>,
    form: AdminForm,
) -> Response {
    match operations::redeploy(&state, &form.admin.principal, &id, &version).await {
        Ok((_, action)) => redirect(&format!(
            "{}?notice=action_rolled_back",
            action_path(&action, "versions")
        )),
        Err(error) => views::operation_refused(&error),
    }
}

/// One trigger in the Triggers list.
struct TriggerRow {
    id: &'static str,
    bound: usize,
}

#[derive(Template)]
#[template(path = "admin/triggers.html")]
struct TriggersPage<'a> {
    frame: Frame<'a>,
    triggers: Vec<TriggerRow>,
}

/// `GET /admin/triggers`.
pub(crate) async fn trigger_list(State(state): State<AppState>, admin: Admin) -> Response {
    let mut rows = Vec::with_capacity(Trigger::ALL.len());
    for trigger in Trigger::ALL {
        let bound = match triggers::bindings(
            &state,
            &admin.principal,
            trigger.id(),
            Slice::first(BINDINGS_SHOWN),
        )
        .await
        {
            Ok(page) => page.items.len(),
            Err(error) => return views::operation_refused(&error),
        };
        rows.push(TriggerRow {
            id: trigger.id(),
            bound,
        });
    }
    views::page(&TriggersPage {
        frame: Frame::new(&state, &admin, "triggers", None),
        triggers: rows,
    })
}

#[derive(Template)]
#[template(path = "admin/trigger.html")]
struct TriggerPage<'a> {
    frame: Frame<'a>,
    trigger: &'static str,
    bindings: Vec<BindingRecord>,
    /// Deployed actions of this trigger not bound yet: (id, name).
    available: Vec<(String, String)>,
    can_update: bool,
}

async fn bound(
    state: &AppState,
    admin: &Admin,
    trigger: Trigger,
) -> Result<Vec<BindingRecord>, ApiError> {
    triggers::bindings(
        state,
        &admin.principal,
        trigger.id(),
        Slice::first(BINDINGS_SHOWN),
    )
    .await
    .map(|page| page.items)
}

/// The page for a trigger Tessera does not run.
fn unknown_trigger() -> Response {
    views::operation_refused(&ApiError::not_found(
        "The trigger does not exist",
        "inexistent_trigger",
    ))
}

/// `GET /admin/triggers/{trigger}`: its actions in the order they run.
pub(crate) async fn trigger(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(trigger) = Trigger::parse(&id) else {
        return unknown_trigger();
    };
    let bindings = match bound(&state, &admin, trigger).await {
        Ok(bindings) => bindings,
        Err(error) => return views::operation_refused(&error),
    };
    let filter = ActionFilter {
        trigger_id: Some(trigger.id().to_string()),
        deployed: Some(true),
        ..ActionFilter::default()
    };
    let available =
        match operations::list(&state, &admin.principal, &filter, Slice::first(100)).await {
            Ok(page) => page
                .items
                .into_iter()
                .filter(|action| !bindings.iter().any(|b| b.action.id == action.id))
                .map(|action| (action.id, action.name))
                .collect(),
            Err(error) => return views::operation_refused(&error),
        };
    let query = query_of(query);
    views::page(&TriggerPage {
        frame: Frame::new(&state, &admin, "triggers", notice_of(&query)),
        trigger: trigger.id(),
        bindings,
        available,
        can_update: admin.may("update:actions"),
    })
}

/// `POST /admin/triggers/{trigger}`: one change to the order — `add` an action at the end,
/// move one `up` or `down`, or `remove` it — written as the whole new list, as the API's
/// PATCH takes it.
pub(crate) async fn change_bindings(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let Some(trigger) = Trigger::parse(&id) else {
        return unknown_trigger();
    };
    let bindings = match bound(&state, &form.admin, trigger).await {
        Ok(bindings) => bindings,
        Err(error) => return views::operation_refused(&error),
    };
    let mut order: Vec<(String, String)> = bindings
        .iter()
        .map(|b| (b.action.id.clone(), b.display_name.clone()))
        .collect();
    let params = &form.params;
    let position = params
        .get("position")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|&p| p < order.len());
    match (params.get("op"), position) {
        (Some("add"), _) => {
            let Some(action_id) = params.get("action").filter(|a| !a.is_empty()) else {
                return views::refused(StatusCode::BAD_REQUEST, "Choose an action to add.");
            };
            let name = match operations::get(&state, &form.admin.principal, action_id).await {
                Ok(action) => action.name,
                Err(error) => return views::operation_refused(&error),
            };
            order.push((action_id.to_string(), name));
        }
        (Some("up"), Some(p)) if p > 0 => order.swap(p, p - 1),
        (Some("down"), Some(p)) if p + 1 < order.len() => order.swap(p, p + 1),
        (Some("remove"), Some(p)) => {
            order.remove(p);
        }
        _ => {
            return views::refused(
                StatusCode::BAD_REQUEST,
                "That change to the order is not possible: reload the page and try again.",
            );
        }
    }
    let items: Result<Vec<Fields>, ApiError> = order
        .into_iter()
        .map(|(action_id, display_name)| {
            let mut item = Map::new();
            item.insert(
                "ref".into(),
                json!({"type": "action_id", "value": action_id}),
            );
            item.insert("display_name".into(), json!(display_name));
            Fields::from_map(item, &["ref", "display_name"])
        })
        .collect();
    let result = match items {
        Ok(items) => triggers::replace(&state, &form.admin.principal, trigger.id(), items).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(_) => redirect(&format!(
            "/admin/triggers/{}?notice=bindings_saved",
            trigger.id()
        )),
        Err(error) => views::operation_refused(&error),
    }
}
