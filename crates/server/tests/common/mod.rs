//! The shared harness (`tessera-testkit`), under the name every server test uses.
pub(crate) use tessera_testkit::*;
