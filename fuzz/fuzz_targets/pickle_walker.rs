//! Any bytes as an HTTP body that may be a model file: a pickle walked
//! opcode by opcode, or a zip whose pickle members are inflated and
//! walked. No panic, bounded work, and every import reported is a
//! `module.name` line (no line break inside, as the buffer needs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::applayer::model::{pickle, walk_body};

thread_local! {
    static ROOM: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fuzz_target!(|data: &[u8]| {
    ROOM.with(|r| {
        let mut room = r.borrow_mut();
        if let Some(w) = walk_body(data, &mut room) {
            assert!(w.imports.len() <= pickle::MAX_IMPORTS);
            for i in &w.imports {
                assert!(!i.contains('\n'));
            }
        }
    });
    let _ = pickle::walk(data);
});
