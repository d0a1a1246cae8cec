//! DNS over UDP and TCP (issue 15). The message parser and TCP framing
//! come first; the transaction state, the `dns.*` buffers and the EVE
//! logger plug into the app layer's seam once it is protocol-generic.

pub mod parser;
