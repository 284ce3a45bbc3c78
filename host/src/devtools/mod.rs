//! Stand-ins for services that cannot be installed here, used by the test
//! suite and by `wasmtel bench loki`. Each is faithful to what the real
//! service accepts and refuses (see the module docs), because tests that
//! pass against a lenient fake prove nothing.

pub mod loki;
