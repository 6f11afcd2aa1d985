//! How a scenario reports: one machine-readable `RESULT {json}` line (what
//! `bench compare` reads) besides the human summary.

/// Prints the machine-readable line.
pub fn print_result(v: &serde_json::Value) {
    println!("RESULT {v}");
}

/// Bytes as MiB for humans.
pub fn mib(b: u64) -> String {
    // Display only.
    #[allow(clippy::cast_precision_loss)]
    let v = b as f64 / (1024.0 * 1024.0);
    format!("{v:.1} MiB")
}
