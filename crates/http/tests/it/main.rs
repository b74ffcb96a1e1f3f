//! Integration tests of tessera-http through its public API, against real sockets.

mod serve;
