//! Relay benchmark (issue 21): a 150,000,000-byte video through S3-compatible object storage
//! into WeCom's upload by URL, on loopback, next to the same two steps done by hand. From the
//! workspace root (needs `s3s-fs` on PATH, `scripts/ensure-s3`, and `curl`):
//!
//! ```text
//! cargo build --release -p wecom-material-cli
//! cargo run --release -p wecom-material-benches --bin relay-bench [RUNS]   # default 3
//! ```
//!
//! By hand: `curl -T` of the file to a presigned PUT URL of the same server, then the
//! emulator's fetch of a presigned GET URL (from the `upload_by_url` request until the job
//! is done, read from the emulator's state, so no polling delay is counted); the MD5 WeCom
//! needs is computed beforehand and not counted. The relay: `wecom-material upload video
//! FILE --via s3://…` in a process of its own (PUT with the MD5 in the same pass, the
//! access check, `upload_by_url`, polling the job, DELETE), its wall time and peak RSS
//! (`VmHWM`). The emulator runs in this process, s3s-fs in its own. Medians of RUNS runs.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use wecom_material_benches::timed;
use wecom_material_core::MediaType;
use wecom_material_mock::s3_server::{ACCESS_KEY, REGION, S3Server, SECRET_KEY};
use wecom_material_mock::{JobStatus, MockConfig, MockServer};

const CORP: &str = "ww-mock-corp";
const SECRET: &str = "mock-secret";
const BUCKET: &str = "bench";
const LEN: u64 = 150_000_000;

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let cli = cli_path();
    let work = std::env::temp_dir().join(format!("wecom-relay-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let file = work.join("bench.mp4");
    wecom_material_mock::samples::write_large(&file, LEN, 150).unwrap();
    let md5 = wecom_material_ureq::md5_file(&file).unwrap();
    let s3 = S3Server::start(BUCKET);
    let mock = MockServer::start(MockConfig::default());
    let client = wecom_material_ureq::Client::builder(CORP, SECRET)
        .base_url(&mock.base_url())
        .unwrap()
        .build();
    let bucket = Bucket::new(
        s3.endpoint().parse().unwrap(),
        UrlStyle::Path,
        BUCKET,
        REGION,
    )
    .unwrap();
    let credentials = Credentials::new(ACCESS_KEY, SECRET_KEY);
    let hour = Duration::from_secs(3600);

    let (mut curl, mut fetch, mut relay, mut rss) = (vec![], vec![], vec![], vec![]);
    for run in 0..runs {
        // By hand: curl -T, then WeCom's (the emulator's) fetch.
        let key = format!("manual/{run}.mp4");
        let put = rusty_s3::actions::PutObject::new(&bucket, Some(&credentials), &key);
        let start = Instant::now();
        let status = Command::new("curl")
            .args(["-sf", "-o", "/dev/null", "-T"])
            .arg(&file)
            .arg(put.sign(hour).as_str())
            .status()
            .expect("curl");
        assert!(status.success(), "curl -T failed");
        curl.push(start.elapsed().as_secs_f64());
        let get = rusty_s3::actions::GetObject::new(&bucket, Some(&credentials), &key);
        let url = get.sign(hour).to_string();
        let start = Instant::now();
        let job = client
            .upload_by_url(MediaType::Video, "bench.mp4", &url, &md5)
            .unwrap();
        let done = mock.wait_for_job(job.jobid.as_str(), Duration::from_secs(300));
        assert!(matches!(done, Some(JobStatus::Finished { .. })), "{done:?}");
        fetch.push(start.elapsed().as_secs_f64());
        let delete = rusty_s3::actions::DeleteObject::new(&bucket, Some(&credentials), &key);
        let status = Command::new("curl")
            .args(["-sf", "-o", "/dev/null", "-X", "DELETE"])
            .arg(delete.sign(hour).as_str())
            .status()
            .expect("curl");
        assert!(status.success(), "curl -X DELETE failed");

        // The relay, in a process of its own.
        let mut cmd = Command::new(&cli);
        cmd.env("WECOM_BASE_URL", mock.base_url())
            .env("WECOM_CORP_ID", CORP)
            .env("WECOM_SECRET", SECRET)
            .env("WECOM_TOKEN_CACHE", work.join("tokens.json"))
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_REGION", REGION)
            .env("AWS_ENDPOINT_URL_S3", s3.endpoint())
            .args(["--quiet", "upload", "video"])
            .arg(&file)
            .args(["--via", &format!("s3://{BUCKET}/relay/")])
            .stdout(Stdio::null());
        let (wall, peak) = timed(cmd);
        relay.push(wall);
        rss.push(peak as f64 / 1024.0);
        assert!(s3.objects(BUCKET).is_empty(), "the relay left an object");
    }
    let (curl, fetch, relay, rss) = (median(curl), median(fetch), median(relay), median(rss));
    let by_hand = curl + fetch;
    println!("150,000,000 B video on loopback, median of {runs} run(s)");
    println!("| step | wall |\n|---|---|");
    println!("| `curl -T` to a presigned PUT URL | {curl:.2} s |");
    println!("| the emulator's fetch (upload_by_url → job done) | {fetch:.2} s |");
    println!("| both by hand (MD5 not counted) | {by_hand:.2} s |");
    println!(
        "| `wecom-material upload video … --via s3://…` | {relay:.2} s ({:+.0} %), peak RSS {rss:.1} MiB |",
        (relay / by_hand - 1.0) * 100.0
    );
    let _ = std::fs::remove_dir_all(&work);
}

fn cli_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.with_file_name("wecom-material");
    assert!(
        path.exists(),
        "build it first: cargo build --release -p wecom-material-cli"
    );
    path
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
