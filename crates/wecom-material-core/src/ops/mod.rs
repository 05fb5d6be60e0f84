//! One module per WeCom endpoint: request type, output type, `build` and `parse` side by side.

pub mod gettoken;
