//! The store's warnings, captured: a `log` logger that keeps the warn lines of every test of
//! one test binary (the logger is global), and what a test asks of them and of Redis.

use std::sync::Mutex;

use wecom_material_redis::AppKeys;

use super::RedisServer;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            LINES.lock().unwrap().push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

/// Installs the capturing logger (once per binary; later calls do nothing).
pub fn capture_warnings() {
    let _ = log::set_logger(&CAPTURE).map(|()| log::set_max_level(log::LevelFilter::Warn));
}

/// The warnings so far that name `store` (each test has its own server port).
pub fn warnings_naming(store: &str) -> Vec<String> {
    let needle = format!("token store: {store}: ");
    LINES
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with(&needle))
        .cloned()
        .collect()
}

/// The generation of the token Redis holds for the app of `keys`.
pub fn stored_generation(redis: &RedisServer, keys: &AppKeys) -> Option<String> {
    redis::cmd("HGET")
        .arg(keys.token())
        .arg("gen")
        .query(&mut redis.connection())
        .unwrap()
}
