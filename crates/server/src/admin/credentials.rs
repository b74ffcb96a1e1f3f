//! Applications → an application's Credentials tab: the public keys it authenticates with
//! (private_key_jwt, RFC 7523), as Auth0's dashboard shows them — add a key from a PEM,
//! delete one, and which method authenticates the application now. Every change is an
//! operation of `management::clients` (its credentials and `client_authentication_methods`),
//! with the administrator's permissions.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde_json::{Map, Value, json};
use tessera_core::Client;
use tessera_core::claims::rfc3339;
use tessera_store::ClientCredential;

use super::form::FormError;
use super::session::{Admin, AdminForm};
use super::views::{self, Frame, Tab};
use super::{notice_of, query_of};
use crate::AppState;
use crate::management::clients::credentials;
use crate::management::{ApiError, Fields, clients};
use crate::pages::redirect;

struct Row {
    credential: ClientCredential,
    created: String,
    expires: String,
    /// Whether it authenticates the application now.
    enabled: bool,
}

#[derive(Template)]
#[template(path = "admin/application_credentials.html")]
struct CredentialsPage<'a> {
    frame: Frame<'a>,
    tabs: Vec<Tab>,
    client: Client,
    type_label: &'static str,
    confidential: bool,
    rows: Vec<Row>,
    can_add: bool,
    can_delete: bool,
    name: String,
    pem: String,
    error: Option<FormError>,
}

impl CredentialsPage<'_> {
    fn error_on(&self, field: &str) -> Option<&str> {
        super::form::error_on(&self.error, field)
    }
}

async fn page<'a>(
    state: &'a AppState,
    admin: &'a Admin,
    client: Client,
    notice: Option<&str>,
) -> Result<CredentialsPage<'a>, Response> {
    let confidential = !client.is_public() && !client.app_type.is_public();
    let listed = if confidential {
        credentials::list(state, &admin.principal, &client.client_id)
            .await
            .map_err(|error| views::operation_refused(&error))?
    } else {
        Vec::new()
    };
    let enabled = client
        .private_key_jwt_credentials
        .clone()
        .unwrap_or_default();
    let rows = listed
        .into_iter()
        .map(|credential| Row {
            created: rfc3339(credential.created_at),
            expires: credential
                .expires_at
                .map_or_else(|| "never".to_string(), rfc3339),
            enabled: enabled.contains(&credential.id),
            credential,
        })
        .collect();
    Ok(CredentialsPage {
        frame: Frame::new(state, admin, "applications", notice),
        tabs: super::applications::tabs(&client, "credentials"),
        type_label: super::applications::type_label(client.app_type),
        confidential,
        rows,
        can_add: admin.may("create:client_credentials") && admin.may("update:clients"),
        can_delete: admin.may("delete:client_credentials") && admin.may("update:clients"),
        client,
        name: String::new(),
        pem: String::new(),
        error: None,
    })
}

fn credentials_path(client: &Client) -> String {
    super::applications::app_path(client, "credentials")
}

/// `GET /admin/applications/{id}/credentials`.
pub(crate) async fn list(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let client = match super::applications::load(&state, &admin, &id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let query = query_of(query);
    match page(&state, &admin, client, notice_of(&query)).await {
        Ok(page) => views::page(&page),
        Err(response) => response,
    }
}

/// `client_authentication_methods` naming these credentials, or `null` (the secret).
fn authentication_methods(enabled: &[String]) -> Fields {
    let value = if enabled.is_empty() {
        Value::Null
    } else {
        let ids: Vec<Value> = enabled.iter().map(|id| json!({"id": id})).collect();
        json!({"private_key_jwt": {"credentials": ids}})
    };
    let mut body = Map::new();
    body.insert("client_authentication_methods".into(), value);
    Fields::from_map(body, clients::FIELDS).expect("a member clients take")
}

/// `POST /admin/applications/{id}/credentials`: registers the pasted key and makes it
/// authenticate the application (private_key_jwt on, beside any key enabled already).
pub(crate) async fn add(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let client = match super::applications::load(&state, &form.admin, &id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let name = form.params.get("name").unwrap_or("").trim().to_string();
    let pem = form.params.get("pem").unwrap_or("").to_string();
    let mut body = Map::new();
    body.insert("credential_type".into(), json!("public_key"));
    body.insert("pem".into(), json!(pem));
    if !name.is_empty() {
        body.insert("name".into(), json!(name));
    }
    let principal = &form.admin.principal;
    let result = async {
        let fields = Fields::from_map(body, credentials::CREATE_FIELDS)?;
        let created = credentials::create(&state, principal, &client.client_id, fields).await?;
        let mut enabled = client
            .private_key_jwt_credentials
            .clone()
            .unwrap_or_default();
        enabled.push(created.id.clone());
        let turned_on = clients::update(
            &state,
            principal,
            &client.client_id,
            authentication_methods(&enabled),
        )
        .await;
        if let Err(error) = turned_on {
            // Not left registered but unused: the page says why it was not added.
            credentials::delete(&state, principal, &client.client_id, &created.id)
                .await
                .ok();
            return Err(error);
        }
        Ok::<_, ApiError>(())
    }
    .await;
    match result {
        Ok(()) => redirect(&format!(
            "{}?notice=credential_added",
            credentials_path(&client)
        )),
        Err(error) if error.status.is_client_error() && error.status.as_u16() != 403 => {
            let admin = &form.admin;
            let mut page = match page(&state, admin, client, None).await {
                Ok(page) => page,
                Err(response) => return response,
            };
            page.name = name;
            // A private key pasted by mistake is not sent back, not even into the form.
            if !pem.contains("PRIVATE KEY") {
                page.pem = pem;
            }
            page.error = Some(error.into());
            views::form_again(&page)
        }
        Err(error) => views::operation_refused(&error),
    }
}

/// `POST /admin/applications/{id}/credentials/{credential_id}/delete`: the key no longer
/// authenticates the application (the secret does again when it was the last), then it is
/// deleted.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path((id, credential_id)): Path<(String, String)>,
    form: AdminForm,
) -> Response {
    let client = match super::applications::load(&state, &form.admin, &id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let principal = &form.admin.principal;
    let result = async {
        // Refuses an unknown credential (and one of another application) before anything.
        credentials::get(&state, principal, &client.client_id, &credential_id).await?;
        let enabled = client
            .private_key_jwt_credentials
            .clone()
            .unwrap_or_default();
        if enabled.contains(&credential_id) {
            let left: Vec<String> = enabled
                .into_iter()
                .filter(|c| *c != credential_id)
                .collect();
            clients::update(
                &state,
                principal,
                &client.client_id,
                authentication_methods(&left),
            )
            .await?;
        }
        credentials::delete(&state, principal, &client.client_id, &credential_id).await
    }
    .await;
    match result {
        Ok(()) => redirect(&format!(
            "{}?notice=credential_deleted",
            credentials_path(&client)
        )),
        Err(error) => views::operation_refused(&error),
    }
}
