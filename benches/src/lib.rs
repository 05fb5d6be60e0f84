//! Shared pieces of the benchmarks (see `benches/core.rs` and `src/bin/transfer_bench.rs`).

/// Deterministic pseudo-random bytes (the benchmarks must not measure compressible zeros).
pub use wecom_material_mock::samples::noise as sample_bytes;

/// The peak resident set size of this process in KiB (`VmHWM`), on Linux.
pub fn peak_rss_kib() -> Option<u64> {
    vm_hwm_kib(std::path::Path::new("/proc/self/status"))
}

/// Runs `cmd` to its end, sampling the child's peak RSS (`VmHWM`, KiB) from `/proc` every
/// 2 ms; returns the wall time in seconds and the peak. A failed command fails the benchmark.
pub fn timed(mut cmd: std::process::Command) -> (f64, u64) {
    let start = std::time::Instant::now();
    let mut child = cmd.spawn().expect("the benchmarked command starts");
    let status_file = std::path::PathBuf::from(format!("/proc/{}/status", child.id()));
    let mut peak = 0;
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .expect("the benchmarked command is waited on")
        {
            break status;
        }
        peak = peak.max(vm_hwm_kib(&status_file).unwrap_or(0));
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let wall = start.elapsed().as_secs_f64();
    assert!(status.success(), "the benchmarked command failed: {status}");
    (wall, peak)
}

/// `VmHWM` (KiB) from a `/proc/PID/status` file.
fn vm_hwm_kib(status_file: &std::path::Path) -> Option<u64> {
    let status = std::fs::read_to_string(status_file).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
