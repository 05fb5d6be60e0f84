//! Shared pieces of the benchmarks (see `benches/core.rs` and `src/bin/transfer_bench.rs`).

/// Deterministic pseudo-random bytes (the benchmarks must not measure compressible zeros).
pub use wecom_material_mock::samples::noise as sample_bytes;

/// The peak resident set size of this process in KiB (`VmHWM`), on Linux.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
