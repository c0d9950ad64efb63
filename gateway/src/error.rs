//! The gateway's infrastructure failures (a business rejection is never one of these: it is a
//! `Reject`, answered on the wire).

use std::path::PathBuf;

#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum GatewayError {
    #[error("cannot open the data directory {}: {reason}", path.display())]
    Engine { path: PathBuf, reason: String },
    #[error("cannot start the fan-out thread: {0}")]
    Thread(std::io::Error),
    #[error("the engine failed while stopping: {0}")]
    Shutdown(huashi_engine::store::StoreError),
    #[error("cluster: {0}")]
    Cluster(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
