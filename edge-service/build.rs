//! Build script of the `kare` binary: the commit and the target for `kare --version`
//! (`kare 0.1.0 (commit 708997b, aarch64-unknown-linux-gnu)`), as the environment variables
//! `KARE_GIT_COMMIT` and `KARE_TARGET`. Outside a git checkout (a source tarball, a vendored
//! crate) the commit is `unknown`. Reruns when HEAD moves (a commit, a checkout), not on every
//! source change.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=KARE_GIT_COMMIT");
    let commit = std::env::var("KARE_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    // HEAD itself (a checkout of another branch), the branch it points to (a new commit) and
    // packed-refs (a branch ref packed by `git gc`). `--git-path` finds them in a worktree too.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(p) = git(&["rev-parse", "--path-format=absolute", "--git-path", &name]) {
            if PathBuf::from(&p).exists() {
                println!("cargo:rerun-if-changed={p}");
            }
        }
    }
    println!("cargo:rustc-env=KARE_GIT_COMMIT={commit}");
    println!(
        "cargo:rustc-env=KARE_TARGET={}",
        std::env::var("TARGET").unwrap_or_else(|_| "unknown".into())
    );
}
