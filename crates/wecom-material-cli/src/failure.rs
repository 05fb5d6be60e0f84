//! Why a command failed, its exit status, and the one line it prints on stderr.

use std::fmt;

use wecom_material_core::Error;

/// Exit status of an API or transport failure.
pub(crate) const EXIT_FAILURE: u8 = 1;
/// Exit status of a usage or validation error (nothing was sent).
pub(crate) const EXIT_USAGE: u8 = 2;

/// A failed command.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The command line or the local input is wrong; nothing was sent (exit 2).
    Usage(String),
    /// A library error: `Invalid` exits 2, everything else 1.
    Wecom(Error),
    /// Something else went wrong after work had started (exit 1).
    Other(String),
}

impl Failure {
    /// A usage error.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure::Usage(message.into())
    }

    /// A failure that is neither usage nor from the library.
    pub(crate) fn other(message: impl Into<String>) -> Self {
        Failure::Other(message.into())
    }

    /// The exit status.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => EXIT_USAGE,
            Failure::Wecom(e) if e.is_invalid() => EXIT_USAGE,
            Failure::Wecom(_) | Failure::Other(_) => EXIT_FAILURE,
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Wecom(e)
    }
}

/// The WeCom message of an error answer, if the error is one.
fn errmsg(e: &Error) -> Option<&str> {
    match e {
        Error::Api(api) | Error::RateLimited(api) => Some(&api.errmsg),
        Error::NotReplayable(inner) => errmsg(inner),
        _ => None,
    }
}

impl fmt::Display for Failure {
    /// One line: `errcode N (meaning): errmsg` when WeCom answered with a code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Failure::Usage(m) | Failure::Other(m) => m.clone(),
            Failure::Wecom(e) => match e.errcode() {
                Some(code) => {
                    let mut line = format!("WeCom errcode {} ({})", code.code(), code.meaning());
                    if matches!(e, Error::RateLimited(_)) {
                        line.push_str(", rate limited, not retried");
                    }
                    if let Some(msg) = errmsg(e).filter(|m| !m.is_empty()) {
                        line.push_str(": ");
                        line.push_str(msg);
                    }
                    line
                }
                None => e.to_string(),
            },
        };
        f.write_str(&one_line(&text))
    }
}

/// Control characters (newlines included) become spaces: an error is one line.
pub(crate) fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
