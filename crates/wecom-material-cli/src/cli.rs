//! The command line: global options and one subcommand per operation (issue 6 is the contract:
//! names, fields and env fallbacks are kept exactly).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use wecom_material_core::MediaType;

/// WeCom (企业微信) temporary material from the shell.
#[derive(Debug, Parser)]
#[command(name = "wecom-material", version, arg_required_else_help = true)]
pub(crate) struct Cli {
    /// API base URL.
    #[arg(long, env = "WECOM_BASE_URL", value_name = "URL", global = true)]
    pub(crate) base_url: Option<String>,
    /// Corp id (企业 ID).
    #[arg(long, env = "WECOM_CORP_ID", value_name = "ID", global = true)]
    pub(crate) corp_id: Option<String>,
    /// The app's secret (prefer the environment variable: the command line is visible to
    /// other users of the machine).
    #[arg(
        long,
        env = "WECOM_SECRET",
        value_name = "SECRET",
        hide_env_values = true,
        global = true
    )]
    pub(crate) secret: Option<String>,
    /// Token cache file, not used when --token-store is set [default:
    /// $XDG_CACHE_HOME/wecom-material/tokens.json or ~/.cache/wecom-material/tokens.json].
    #[arg(long, env = "WECOM_TOKEN_CACHE", value_name = "PATH", global = true)]
    pub(crate) token_cache: Option<PathBuf>,
    /// Share the app's access token with every process that uses the same Redis store:
    /// redis://HOST:PORT/DB or redis://:PASSWORD@HOST:PORT/DB (DB optional), rediss://… (TLS)
    /// or redis+unix:///path/to/socket?db=N&pass=… (query optional). The store is then the
    /// one shared source of the token: the --token-cache file is neither read nor written.
    /// When the store cannot be reached, one warning is printed and the run goes on with a
    /// token of its own.
    #[arg(
        long,
        env = "WECOM_TOKEN_STORE",
        value_name = "URL",
        hide_env_values = true,
        global = true
    )]
    pub(crate) token_store: Option<String>,
    /// Print results as JSON on stdout: one object per command (one per line for several
    /// files or ids); a failure prints {"error","errcode","exit"}.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Log each request on stderr (secrets masked).
    #[arg(short, long, global = true)]
    pub(crate) verbose: bool,
    /// No progress bars and no notices on stderr (errors are still printed).
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
    /// Idle timeout of a transfer, in seconds: a download or upload that moves no data for
    /// this long is broken off (and retried). Like every global option it may come before or
    /// after the command; for `job` and `upload-by-url` (JSON calls only) `--timeout` is the
    /// wait's own limit instead.
    #[arg(long, value_name = "SECS", default_value_t = 30, global = true,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) timeout: u64,
    /// How many times a request that failed in the network (or stalled) is retried.
    #[arg(long, value_name = "N", default_value_t = 2, global = true,
          value_parser = clap::value_parser!(u32).range(0..=20))]
    pub(crate) retries: u32,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Upload temporary media (valid 3 days).
    Upload(UploadArgs),
    /// Upload a JPG/PNG for a permanent URL.
    UploadImage(UploadImageArgs),
    /// Download a temporary media.
    Get(GetArgs),
    /// Download HD voice (speex 16 kHz) from media/get/jssdk.
    HdVoice(GetArgs),
    /// Ask WeCom to fetch a big file (≤ 200 MB) from a URL (async job).
    UploadByUrl(UploadByUrlArgs),
    /// The state of an async upload job.
    Job(JobArgs),
    /// Job-finished callback tools.
    Callback {
        #[command(subcommand)]
        command: CallbackCommand,
    },
    /// Run the WeCom emulator on loopback (first stdout line: its base URL).
    Mock(MockArgs),
    /// The whole lifecycle against an embedded emulator.
    Demo,
    /// Print a shell completion script on stdout.
    Completions(CompletionsArgs),
    /// Write man pages (wecom-material.1 and one per subcommand) into a directory.
    #[command(hide = true)]
    Manpage(ManpageArgs),
}

/// `completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum, value_name = "SHELL")]
    pub(crate) shell: clap_complete::Shell,
}

/// `manpage`.
#[derive(Debug, Args)]
pub(crate) struct ManpageArgs {
    /// Where the pages go (created when missing).
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,
}

/// A media type of `media/upload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum MediaTypeArg {
    /// JPG or PNG, ≤ 10 MB.
    Image,
    /// AMR, ≤ 2 MB.
    Voice,
    /// MP4, ≤ 10 MB.
    Video,
    /// Any file, ≤ 20 MB.
    File,
}

impl From<MediaTypeArg> for MediaType {
    fn from(arg: MediaTypeArg) -> Self {
        match arg {
            MediaTypeArg::Image => MediaType::Image,
            MediaTypeArg::Voice => MediaType::Voice,
            MediaTypeArg::Video => MediaType::Video,
            MediaTypeArg::File => MediaType::File,
        }
    }
}

/// A media type of `media/upload_by_url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum UrlMediaTypeArg {
    /// MP4.
    Video,
    /// Any file.
    File,
}

impl From<UrlMediaTypeArg> for MediaType {
    fn from(arg: UrlMediaTypeArg) -> Self {
        match arg {
            UrlMediaTypeArg::Video => MediaType::Video,
            UrlMediaTypeArg::File => MediaType::File,
        }
    }
}

/// `upload`.
#[derive(Debug, Args)]
pub(crate) struct UploadArgs {
    /// Media type.
    #[arg(value_enum, value_name = "TYPE")]
    pub(crate) media_type: MediaTypeArg,
    /// The files to upload; `-` reads standard input (needs --filename).
    #[arg(value_name = "PATH", required = true)]
    pub(crate) paths: Vec<PathBuf>,
    /// The name users see (default: the file's own name); only with one PATH.
    #[arg(long, value_name = "NAME")]
    pub(crate) filename: Option<String>,
    /// Upload at most N files at once.
    #[arg(long, short, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) jobs: u16,
    /// Relay a video or file over the direct limit (up to 200 MB) through S3-compatible
    /// object storage: PUT under s3://BUCKET/PREFIX/ (a unique name), WeCom fetches a presigned
    /// URL (async upload by URL), the object is deleted afterwards. Credentials, region and
    /// endpoint come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
    /// AWS_REGION (or AWS_DEFAULT_REGION; default us-east-1) and AWS_ENDPOINT_URL_S3 (or
    /// AWS_ENDPOINT_URL; default AWS S3 of the region).
    #[arg(long, env = "WECOM_RELAY", value_name = "s3://BUCKET/PREFIX/")]
    pub(crate) via: Option<String>,
    /// Path-style object URLs (ENDPOINT/BUCKET/KEY) for a custom endpoint; on by default for
    /// an IP or localhost endpoint.
    #[arg(long)]
    pub(crate) s3_path_style: bool,
    /// Keep the relayed object in the bucket (by default it is deleted, whatever the outcome).
    #[arg(long)]
    pub(crate) keep_object: bool,
    /// Give up each file's upload after this many seconds [default: no overall deadline; a
    /// stalled transfer still ends]. A relayed upload's deadline covers the PUT, WeCom's
    /// fetch and the job wait; its object is still deleted afterwards.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub(crate) deadline: Option<u64>,
}

/// `upload-image`.
#[derive(Debug, Args)]
pub(crate) struct UploadImageArgs {
    /// The JPG or PNG file.
    pub(crate) path: PathBuf,
    /// The name sent (default: the file's own name).
    #[arg(long, value_name = "NAME")]
    pub(crate) filename: Option<String>,
    /// Give up the upload after this many seconds [default: no overall deadline; a stalled
    /// transfer still ends].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub(crate) deadline: Option<u64>,
}

/// `get` and `hd-voice`.
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// The media ids.
    #[arg(value_name = "MEDIA_ID", required = true)]
    pub(crate) media_ids: Vec<String>,
    /// A directory (ends in `/` or exists; created when missing; the server's filename is
    /// used), a file path (parent directories created; one MEDIA_ID only), or `-` for
    /// standard output [default: .].
    #[arg(long, short, value_name = "PATH_OR_DIR")]
    pub(crate) output: Option<PathBuf>,
    /// Replace an existing file.
    #[arg(long)]
    pub(crate) force: bool,
    /// Range requests in flight at once for a media into a file (1 fetches it in one stream;
    /// HD voice and standard output always do).
    #[arg(long, short = 'c', value_name = "N", env = "WECOM_CONNECTIONS", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=16))]
    pub(crate) connections: u16,
    /// Give up a media's whole download after this many seconds (the part file is kept for
    /// the next run) [default: no overall deadline; a stalled transfer still ends].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub(crate) deadline: Option<u64>,
}

/// `upload-by-url`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("md5_source").required(true).args(["md5", "md5_of"])))]
pub(crate) struct UploadByUrlArgs {
    /// Media type.
    #[arg(value_enum, value_name = "TYPE")]
    pub(crate) media_type: UrlMediaTypeArg,
    /// Where WeCom fetches the file (must support Range).
    #[arg(long)]
    pub(crate) url: String,
    /// The name users see.
    #[arg(long, value_name = "NAME")]
    pub(crate) filename: String,
    /// MD5 of the file, 32 hex digits (either case; sent lowercase).
    #[arg(long, value_name = "HEX")]
    pub(crate) md5: Option<String>,
    /// Compute the MD5 from a local copy of the file.
    #[arg(long, value_name = "PATH")]
    pub(crate) md5_of: Option<PathBuf>,
    /// Wait for the job to end (polling) and print its result.
    #[arg(long)]
    pub(crate) wait: bool,
    /// How long --wait waits, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    pub(crate) timeout: u64,
}

/// `job`.
#[derive(Debug, Args)]
pub(crate) struct JobArgs {
    /// The job id from upload-by-url.
    pub(crate) jobid: String,
    /// Wait for the job to end (polling).
    #[arg(long)]
    pub(crate) wait: bool,
    /// How long --wait waits, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    pub(crate) timeout: u64,
}

/// `callback …`.
#[derive(Debug, Subcommand)]
pub(crate) enum CallbackCommand {
    /// Verify and decrypt a callback (URL check echostr, or an event body from stdin).
    Decrypt(CallbackDecryptArgs),
}

/// `callback decrypt`.
#[derive(Debug, Args)]
pub(crate) struct CallbackDecryptArgs {
    /// The callback Token of the app (prefer the environment variable: the command line is
    /// visible to other users of the machine).
    #[arg(
        long,
        env = "WECOM_CALLBACK_TOKEN",
        value_name = "T",
        hide_env_values = true
    )]
    pub(crate) token: String,
    /// The 43-character EncodingAESKey (prefer the environment variable).
    #[arg(
        long,
        env = "WECOM_CALLBACK_AES_KEY",
        value_name = "K",
        hide_env_values = true
    )]
    pub(crate) aes_key: String,
    /// The expected receive id (corp id, or suite id for a third-party suite).
    #[arg(long, value_name = "ID")]
    pub(crate) receive_id: String,
    /// `msg_signature` of the query.
    #[arg(long, value_name = "S")]
    pub(crate) signature: String,
    /// `timestamp` of the query.
    #[arg(long, value_name = "TS")]
    pub(crate) timestamp: String,
    /// `nonce` of the query.
    #[arg(long, value_name = "N")]
    pub(crate) nonce: String,
    /// The URL check's `echostr` (URL-decoded); without it the XML body is read from stdin.
    #[arg(long, value_name = "E")]
    pub(crate) echostr: Option<String>,
}

/// `mock`: the flags are the emulator crate's own (shared with its standalone
/// `wecom-material-mock` binary).
pub(crate) use wecom_material_mock::cli::MockArgs;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// Issue 19: `--retries` / `--timeout` after the subcommand were refused; every global
    /// option is accepted on either side now (as `gh` and `aws` do).
    #[test]
    fn global_options_are_accepted_after_the_subcommand() {
        Cli::command().debug_assert();
        let cli = parse(&[
            "w",
            "get",
            "m",
            "--timeout",
            "5",
            "--retries",
            "4",
            "--base-url",
            "http://127.0.0.1:1",
            "--corp-id",
            "ww",
            "--secret",
            "s",
            "--token-cache",
            "/tmp/t.json",
            "--json",
        ]);
        assert_eq!((cli.timeout, cli.retries), (5, 4));
        assert_eq!(cli.base_url.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(
            (cli.corp_id.as_deref(), cli.secret.as_deref()),
            (Some("ww"), Some("s"))
        );
        assert_eq!(cli.token_cache, Some(PathBuf::from("/tmp/t.json")));
        assert!(cli.json);
        let cli = parse(&[
            "w",
            "upload",
            "file",
            "a.txt",
            "--token-store",
            "redis://127.0.0.1:1",
        ]);
        assert_eq!(cli.token_store.as_deref(), Some("redis://127.0.0.1:1"));
        let cli = parse(&["w", "--timeout", "9", "get", "m"]);
        assert_eq!((cli.timeout, cli.retries), (9, 2));
        // `job` and `upload-by-url` have a `--timeout` of their own (the wait's limit, in
        // seconds): on their command line, on either side, it is that limit.
        for (args, wait) in [
            (&["w", "job", "j1"][..], 900),
            (&["w", "job", "j1", "--timeout", "5"], 5),
            (&["w", "--timeout", "7", "job", "j1"], 7),
        ] {
            let Command::Job(job) = parse(args).command else {
                panic!("{args:?}")
            };
            assert_eq!(job.timeout, wait, "{args:?}");
        }
        assert!(Cli::try_parse_from(["w", "get", "m", "--retries", "99"]).is_err());
    }
}
