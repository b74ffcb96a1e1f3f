//! Integration tests of the sample API through its routes.

mod api;
