pub(crate) async fn Io() -> &'static str {
    "not yet"
}
