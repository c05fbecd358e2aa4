//! What a peer sends a shared document through the hub — well-formed, mutated, cut
//! and arbitrary updates — is applied whole or not at all, and what is accepted is
//! stored (`mesh_core::testing::check_doc_updates`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(mesh_core::testing::check_doc_updates(data));
});
