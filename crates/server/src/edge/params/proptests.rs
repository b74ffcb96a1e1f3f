//! Properties of the parameter parser (proptest, bounded case counts): any input is
//! answered without a panic; what a client encodes comes back exactly, from a query
//! string, a form or a JSON body alike; a repeated parameter, an oversize value or body is
//! refused whatever the encoding; error messages name parameters in a short, printable
//! form.

use axum::http::{HeaderMap, HeaderValue, header};
use proptest::prelude::*;
use serde_json::Value;

use super::*;

/// Parameter names as clients (and attackers) write them.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec!["client_id", "state", "scope", "grant_type", "code"])
            .prop_map(str::to_string),
        ".{1,60}",
    ]
}

/// Values: mostly short, sometimes around the per-value limit.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => ".{0,40}",
        1 => (MAX_VALUE_LEN - 2..MAX_VALUE_LEN + 3).prop_map(|len| "v".repeat(len)),
        1 => Just(String::new()),
    ]
}

/// Parameters in order; a name may repeat.
fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec((name(), value()), 0..8)
}

fn form(pairs: &[(String, String)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

/// A JSON object written member by member, so that a name may repeat.
fn json(pairs: &[(String, String)]) -> String {
    let members: Vec<String> = pairs
        .iter()
        .map(|(name, value)| {
            format!(
                "{}:{}",
                Value::from(name.as_str()),
                Value::from(value.as_str())
            )
        })
        .collect();
    format!("{{{}}}", members.join(","))
}

/// What a form parser must answer for these pairs: the first oversize value or repeated
/// name, in order, or the parameters.
fn expected(pairs: &[(String, String)]) -> Result<Vec<(String, String)>, ParamsError> {
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in pairs {
        if value.len() > MAX_VALUE_LEN {
            return Err(ParamsError::ValueTooLong(checked_name(name)));
        }
        if seen.contains(&name.as_str()) {
            return Err(ParamsError::Duplicate(checked_name(name)));
        }
        seen.push(name);
    }
    Ok(pairs.to_vec())
}

/// The parameters came back exactly, or the expected refusal came.
fn agrees(
    parsed: Result<Params, ParamsError>,
    pairs: &[(String, String)],
) -> Result<(), TestCaseError> {
    match (parsed, expected(pairs)) {
        (Ok(params), Ok(pairs)) => same_values(&params, &pairs)?,
        (Err(error), Err(expected)) => prop_assert_eq!(error, expected),
        (parsed, expected) => prop_assert!(false, "parsed {parsed:?}, expected {expected:?}"),
    }
    Ok(())
}

/// Like `agrees`, where several problems may be reported in another order (a JSON body
/// is checked for repeated members while it is parsed, its values after): a refusal must
/// name one of the repeated or oversize parameters.
fn agrees_in_some_order(
    parsed: Result<Params, ParamsError>,
    pairs: &[(String, String)],
) -> Result<(), TestCaseError> {
    match (parsed, expected(pairs)) {
        (Ok(params), Ok(pairs)) => same_values(&params, &pairs)?,
        (Err(error), Err(_)) => {
            let mut names: Vec<&str> = Vec::new();
            let mut repeated = Vec::new();
            for (name, _) in pairs {
                if names.contains(&name.as_str()) {
                    repeated.push(checked_name(name));
                }
                names.push(name);
            }
            let oversize: Vec<String> = pairs
                .iter()
                .filter(|(_, value)| value.len() > MAX_VALUE_LEN)
                .map(|(name, _)| checked_name(name))
                .collect();
            match &error {
                ParamsError::Duplicate(name) => prop_assert!(repeated.contains(name), "{error:?}"),
                ParamsError::ValueTooLong(name) => {
                    prop_assert!(oversize.contains(name), "{error:?}")
                }
                other => prop_assert!(false, "{other:?}"),
            }
        }
        (parsed, expected) => prop_assert!(false, "parsed {parsed:?}, expected {expected:?}"),
    }
    Ok(())
}

fn same_values(params: &Params, pairs: &[(String, String)]) -> Result<(), TestCaseError> {
    prop_assert_eq!(params.values.len(), pairs.len());
    for (name, value) in pairs {
        let expected = (!value.is_empty()).then_some(value.as_str());
        prop_assert_eq!(params.get(name), expected, "{:?}", name);
    }
    Ok(())
}

fn headers(content_type: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap(),
    );
    headers
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_are_parsed_or_refused_without_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = Params::from_urlencoded(&bytes);
        let _ = Params::from_json(&bytes);
        for content_type in ["application/x-www-form-urlencoded", "application/json", "text/plain"] {
            let _ = Params::from_body(&headers(content_type), &bytes, true);
        }
    }

    #[test]
    fn encoded_parameters_come_back_exactly(pairs in pairs()) {
        agrees(Params::from_urlencoded(form(&pairs).as_bytes()), &pairs)?;
    }

    #[test]
    fn a_json_body_reads_like_the_same_form(pairs in pairs()) {
        agrees_in_some_order(Params::from_json(json(&pairs).as_bytes()), &pairs)?;
        let json_body = Params::from_body(&headers("Application/JSON; charset=utf-8"), json(&pairs).as_bytes(), true);
        agrees_in_some_order(json_body, &pairs)?;
        let form_body = Params::from_body(&headers("application/x-www-form-urlencoded ;charset=UTF-8"), form(&pairs).as_bytes(), true);
        agrees(form_body, &pairs)?;
    }

    #[test]
    fn a_json_body_is_refused_where_only_forms_are_read(pairs in pairs()) {
        let parsed = Params::from_body(&headers("application/json"), json(&pairs).as_bytes(), false);
        prop_assert_eq!(parsed.unwrap_err(), ParamsError::UnsupportedContentType);
    }

    #[test]
    fn nested_json_values_are_refused(pairs in pairs(), nested in prop_oneof![Just("{}"), Just("[]"), Just("[\"a\"]"), Just("{\"a\":\"b\"}")]) {
        let mut body = json(&pairs);
        body.insert_str(1, &format!("\"nested\":{nested}{}", if pairs.is_empty() { "" } else { "," }));
        let parsed = Params::from_json(body.as_bytes());
        // Unless a repeated or oversize parameter came first: both are refused too.
        prop_assert!(parsed.is_err(), "{body}");
    }

    #[test]
    fn bodies_over_the_limit_are_refused_unread(extra in 1usize..2000, json_body in any::<bool>()) {
        let body = "a".repeat(MAX_PARAMS_LEN + extra);
        let parsed = if json_body { Params::from_json(body.as_bytes()) } else { Params::from_urlencoded(body.as_bytes()) };
        prop_assert_eq!(parsed.unwrap_err(), ParamsError::TooLarge);
    }

    #[test]
    fn names_in_errors_are_short_and_printable(name in ".{0,200}") {
        let shown = checked_name(&name);
        prop_assert!(shown.chars().count() <= 40);
        prop_assert!(!shown.chars().any(char::is_control));
    }
}
