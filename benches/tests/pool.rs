//! `harness --pool`: the summary of saved outputs, each cell the median over all their runs.

use std::process::Command;

fn line(framework: &str, runs: &[f64]) -> String {
    format!(
        r#"{{"bench":"pingpong","framework":"{framework}","metric":"round_trips_per_s","runs":{runs:?},"unit":"1/s","value":0}}"#
    )
}

#[test]
fn pooled_cells_are_medians_over_every_file_with_ratios_to_the_best_peer() {
    let dir = std::env::temp_dir().join(format!("harness-pool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (a, b) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
    // A line that is not JSON (the harness's stderr mixed in) is skipped.
    let first = [line("actor-core", &[100.0, 300.0]), line("actix", &[50.0])];
    std::fs::write(&a, format!("table text\n{}\n", first.join("\n"))).expect("write");
    std::fs::write(&b, format!("{}\n", line("actor-core", &[200.0]))).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("--pool")
        .arg(format!("{},{}", a.display(), b.display()))
        .output()
        .expect("the harness runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    // actor-core: the median of 100, 300 and 200 (not the mean of the files' medians, 175),
    // four times actix's 50.
    assert!(
        table.contains("| pingpong | round_trips_per_s (1/s) | 200 (4.00x) | 50.00 (1.00x) |"),
        "{table}"
    );
}

#[test]
fn a_missing_output_is_an_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["--pool", "/no/such/output.jsonl"])
        .output()
        .expect("the harness runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/output.jsonl"));
}
