//! Build script: records what `engine --version` shows beside the version,
//! the git commit (`ENGINE_GIT_COMMIT`, a short hash, `unknown` without git
//! or outside a repository; `-dirty` is not tracked) and the enabled cargo
//! features (`ENGINE_FEATURES`).

use std::path::Path;
use std::process::Command;

/// `git args…` run in the package's directory, its trimmed output when it
/// succeeds.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=ENGINE_GIT_COMMIT={commit}");
    // The compiler too: checkpoints name the build that wrote them (hash
    // functions and layouts may change with it).
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map_or_else(|| "unknown".to_owned(), |v| v.trim().to_owned());
    println!("cargo:rustc-env=ENGINE_RUSTC_VERSION={version}");
    // Rerun when HEAD moves: HEAD itself (a branch switch, a detached
    // checkout), the branch's ref (a commit) and packed refs. `--git-path`
    // resolves each inside a worktree too. Only files that exist are named:
    // Cargo reruns on every build for a missing one.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            let path = Path::new(&path);
            let path = if path.is_absolute() {
                path.to_path_buf()
            } else {
                Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join(path)
            };
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    let features: Vec<&str> = [
        ("cli", "CARGO_FEATURE_CLI"),
        ("parquet", "CARGO_FEATURE_PARQUET"),
    ]
    .into_iter()
    .filter(|(_, var)| std::env::var_os(var).is_some())
    .map(|(name, _)| name)
    .collect();
    let features = if features.is_empty() {
        "none".to_owned()
    } else {
        features.join(",")
    };
    println!("cargo:rustc-env=ENGINE_FEATURES={features}");
}
