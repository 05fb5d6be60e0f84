//! The trait every business endpoint implements.

use crate::body::Body;
use crate::endpoint::BaseUrl;
use crate::error::{Error, OperationKind};
use crate::secret::AccessToken;

/// One WeCom endpoint: how to build its request and how to read its response.
///
/// `build` is called once per attempt (the token can change between attempts after a
/// refresh); it must be cheap and must not copy upload payloads. `parse` never panics, on any
/// input.
pub trait Operation {
    /// What a successful call returns.
    type Output;

    /// A short name for logs, e.g. `"media/upload"`.
    const NAME: &'static str;

    /// What a cancel or a deadline calls this operation ([`Error::Cancelled`]).
    const KIND: OperationKind = OperationKind::JsonCall;

    /// Builds the request for one attempt with `token`.
    fn build(&self, base: &BaseUrl, token: &AccessToken) -> http::Request<Body>;

    /// How far the current attempt got, for an upload: the payload bytes its frames sent, of
    /// the whole payload. `None` for a JSON call.
    fn progress(&self) -> Option<crate::Progress> {
        None
    }

    /// Reads a complete response.
    fn parse<B: AsRef<[u8]>>(&self, response: http::Response<B>) -> Result<Self::Output, Error>;
}
