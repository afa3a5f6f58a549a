//! Who may do what. Every endpoint asks here; nothing is allowed that is not listed.

use super::{Actor, Role};
use crate::error::ApiError;

/// The regional directory is read by every authenticated role: it is what everyone trusts.
pub fn read_directory(actor: &Actor) -> Result<(), ApiError> {
    if actor.roles.is_empty() {
        return Err(ApiError::forbidden("Your token carries no role that Renkei knows"));
    }
    Ok(())
}

/// Only the association's admins change the directory (DOMAIN.md §6: accuracy first).
pub fn write_directory(actor: &Actor) -> Result<(), ApiError> {
    if actor.has(Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::forbidden("Only admins may change the directory"))
    }
}
