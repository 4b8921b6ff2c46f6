//! Records the git revision for `earshot --version`. Never fails the build: without git or a
//! checkout (a source tarball) the revision is `unknown`, and packagers may set
//! EARSHOT_GIT_REVISION themselves.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=EARSHOT_GIT_REVISION");
    let revision = std::env::var("EARSHOT_GIT_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            let rev = git(&["rev-parse", "--short", "HEAD"])?;
            // Rebuild when HEAD moves, the branch advances, or the working tree's index changes
            // (the `-dirty` mark); paths come from git, as worktrees keep them elsewhere.
            for what in ["HEAD", "index", "packed-refs"] {
                if let Some(p) = git(&["rev-parse", "--path-format=absolute", "--git-path", what]) {
                    println!("cargo:rerun-if-changed={p}");
                }
            }
            if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
                if let Some(p) =
                    git(&["rev-parse", "--path-format=absolute", "--git-path", &branch])
                {
                    println!("cargo:rerun-if-changed={p}");
                }
            }
            // --no-optional-locks: a plain `git status` may rewrite the index, which would make
            // the next build run this script again.
            let dirty = git(&[
                "--no-optional-locks",
                "status",
                "--porcelain",
                "--untracked-files=no",
            ])
            .is_some();
            Some(if dirty { format!("{rev}-dirty") } else { rev })
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=EARSHOT_GIT_REVISION={revision}");
}
