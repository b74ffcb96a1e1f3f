pub(crate) async fn Error() -> &'static str {
    "not yet"
}
