//! The checks a handshake passes before the upgrade, built once at start and
//! shared by every worker.

use std::sync::Arc;

use super::apikey::ApiGate;
use crate::admission::{Admission, OriginPolicy};
use crate::auth::Authenticator;

/// The `Origin` allow-list, admission (connection caps and pacing per IP and
/// in total), and authentication.
pub(crate) struct Gate {
    pub origins: OriginPolicy,
    pub admission: Arc<Admission>,
    pub auth: Authenticator,
    /// Whether `GET /` serves the demo chat (`server.demo_page`, resolved).
    pub demo_page: bool,
    /// The server API's keys, allow-list and seats; `None`: the API is off.
    pub api: Option<ApiGate>,
}
