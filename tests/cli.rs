//! The `huashi` binary's command line: version, and `replay` on a directory that holds no market
//! or a damaged one. (The protocol-level end-to-end suite is the huashi-tests crate beside this.)

use std::process::Command;

fn huashi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_huashi"))
}

#[test]
fn version_prints_the_package_version() {
    let out = huashi().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn replay_of_an_empty_directory_fails_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = huashi().args(["replay", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success(), "an empty directory holds no market");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no market"), "{}", String::from_utf8_lossy(&out.stderr));
}
