//! The documents that must not drift: `docs/protocol.md` is the wire contract copied verbatim for
//! readers of the repository; when the contract itself (`../shared/protocol.md`) is beside the
//! checkout, the copy must equal it.

use std::path::Path;

#[test]
fn the_protocol_copy_is_the_contract_verbatim() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = std::fs::read_to_string(root.join("docs/protocol.md")).expect("docs/protocol.md is in the repository");
    assert!(copy.contains("## 10. The Shanghai Flower Consumption Index"), "docs/protocol.md is not the protocol");
    match std::fs::read_to_string(root.join("../shared/protocol.md")) {
        Ok(contract) => assert!(copy == contract, "docs/protocol.md differs from ../shared/protocol.md: copy it again"),
        Err(_) => eprintln!("skipped the comparison: no ../shared/protocol.md beside this checkout"),
    }
}
