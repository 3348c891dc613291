//! The harness's run order: workload by workload, each round one run of every framework, the
//! next round starting one framework further on (`benches::interleaved`).

use std::process::Command;

#[test]
fn runs_of_a_workload_alternate_between_frameworks() {
    let summary = std::env::temp_dir().join(format!("harness-order-{}.md", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "--quick",
            "--only",
            "pingpong",
            "--frameworks",
            "actor-core,tokio-mpsc",
            "--runs",
            "3",
            "--summary",
        ])
        .arg(&summary)
        .output()
        .expect("the harness runs");
    let _ = std::fs::remove_file(&summary);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let order: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("pingpong "))
        .collect();
    assert_eq!(
        order,
        [
            "pingpong 1/3: actor-core",
            "pingpong 1/3: tokio-mpsc",
            "pingpong 2/3: tokio-mpsc",
            "pingpong 2/3: actor-core",
            "pingpong 3/3: actor-core",
            "pingpong 3/3: tokio-mpsc",
        ],
        "{stderr}"
    );
    // Each framework's line still lists its three runs.
    let stdout = String::from_utf8_lossy(&out.stdout);
    for framework in ["actor-core", "tokio-mpsc"] {
        let line = stdout
            .lines()
            .find(|l| l.contains(&format!(r#""framework":"{framework}""#)))
            .unwrap_or_else(|| panic!("no line for {framework}: {stdout}"));
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert_eq!(v["runs"].as_array().map(Vec::len), Some(3), "{line}");
    }
}
