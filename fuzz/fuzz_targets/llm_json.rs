//! Any bytes as an LLM-API request or response body: the JSON walker,
//! the prompt extractor and the completion reader (one body, JSON lines,
//! server-sent events). No panic, and nothing read is longer than what
//! came (decoding only shortens: `\uXXXX` is 6 bytes for at most 3, a
//! lone surrogate's U+FFFD too).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::applayer::llm::{endpoint, parse_request, parse_response, Request, Response};

fuzz_target!(|data: &[u8]| {
    let mut req = Request::default();
    let _ = parse_request(data, &mut req);
    let lines = req.prompt.len() + req.system.len() + req.tool_args.len();
    // Each string at most once per buffer, plus a separator each.
    assert!(req.prompt.len() <= data.len() + req.strings as usize);
    assert!(lines <= 3 * (data.len() + req.strings as usize));
    assert!(req.model.len() <= data.len());
    for sse in [false, true] {
        let mut resp = Response::default();
        parse_response(data, sse, &mut resp);
        assert!(resp.text.len() <= 2 * data.len());
        let _ = endpoint(&req, &resp, data);
    }
});
