//! What can go wrong in the sync loop: [`EngineError`] stops the agent;
//! a cycle's failure ([`CycleError`]) either waits for the hub or for room
//! on disk, or stops the agent too.

use std::path::PathBuf;

use crate::credentials::TokenRefused;
use crate::hub_client::HubError;
use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "the folder marker {0} vanished while syncing (unmounted disk? deleted folder?); \
         stopped so nothing is deleted on the hub"
    )]
    MarkerVanished(PathBuf),
    #[error(transparent)]
    State(#[from] StateError),
    /// The hub refused the token: retrying cannot help.
    #[error(transparent)]
    Unauthorized(TokenRefused),
    #[error(transparent)]
    FolderUnreadable(#[from] crate::walk::FolderUnreadable),
}

/// What a cycle's failure means for the loop.
pub(super) enum CycleError {
    /// The hub is unreachable: keep the work and retry later.
    HubDown(HubError),
    /// The folder's disk is full (the state database could not be
    /// written): nothing is lost, retry once there is room.
    DiskFull(StateError),
    Fatal(EngineError),
}

impl From<StateError> for CycleError {
    fn from(err: StateError) -> Self {
        if err.is_disk_full() {
            CycleError::DiskFull(err)
        } else {
            CycleError::Fatal(EngineError::State(err))
        }
    }
}

/// Two outcomes of one cycle as one: a failure that stops the agent wins
/// over one that only waits for the hub, else the first failure.
pub(super) fn worse(
    first: Result<(), CycleError>,
    second: Result<(), CycleError>,
) -> Result<(), CycleError> {
    match (first, second) {
        (
            Err(CycleError::HubDown(_) | CycleError::DiskFull(_)),
            Err(fatal @ CycleError::Fatal(_)),
        ) => Err(fatal),
        (Err(first), _) => Err(first),
        (Ok(()), second) => second,
    }
}

impl CycleError {
    /// A failed hub call: a refused token stops the agent, anything else
    /// is retried later.
    pub(super) fn from_hub(err: HubError) -> Self {
        match err {
            HubError::Unauthorized(refused) => {
                CycleError::Fatal(EngineError::Unauthorized(refused))
            }
            other => CycleError::HubDown(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub_down() -> Result<(), CycleError> {
        Err(CycleError::HubDown(HubError::Io(std::io::Error::other(
            "reset",
        ))))
    }

    fn fatal() -> Result<(), CycleError> {
        Err(CycleError::Fatal(EngineError::MarkerVanished(
            PathBuf::from("/f/.sf"),
        )))
    }

    fn is_fatal(result: &Result<(), CycleError>) -> bool {
        matches!(result, Err(CycleError::Fatal(_)))
    }

    /// A failure that stops the agent is never hidden behind one that
    /// only waits for the hub, whichever came first.
    #[test]
    fn the_worse_of_two_outcomes_wins() {
        assert!(worse(Ok(()), Ok(())).is_ok());
        assert!(matches!(
            worse(Ok(()), hub_down()),
            Err(CycleError::HubDown(_))
        ));
        assert!(matches!(
            worse(hub_down(), Ok(())),
            Err(CycleError::HubDown(_))
        ));
        assert!(is_fatal(&worse(hub_down(), fatal())));
        assert!(is_fatal(&worse(fatal(), hub_down())));
        assert!(is_fatal(&worse(Ok(()), fatal())));
        assert!(is_fatal(&worse(fatal(), Ok(()))));
    }
}
