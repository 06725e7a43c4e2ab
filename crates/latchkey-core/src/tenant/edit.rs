//! Changes to a tenant's stored configuration made in code (the Management
//! API): a read-modify-write of the whole configuration, checked by the rules
//! a tenant file is checked by and written only if nobody changed it
//! meanwhile (the store's compare-and-set on the tenant's revision; a lost
//! race reads again and redoes the change). What a change makes is recorded
//! in [`TenantFile::api_owned`] by the change itself, so that applying a
//! tenant file that does not list it leaves it alone ([`super::apply`]).

use super::file::{TenantFileError, check_config};
use super::model::TenantFile;
use crate::context::Core;
use crate::store::StoreError;

/// How many times a change is redone when other changes keep coming first.
const TRIES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum EditError<E> {
    /// No tenant of that name.
    #[error("no such tenant")]
    NoTenant,
    /// The change refused itself (what it was asked is wrong).
    #[error("the change was refused")]
    Refused(E),
    /// The configuration the change would leave breaks a rule a tenant file
    /// is held to (the path and why).
    #[error("{0}")]
    Invalid(TenantFileError),
    /// Other changes came first every time.
    #[error("the tenant's configuration kept changing; try again")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies `change` to the configuration of the tenant `name` and stores
/// the result if it is valid and nobody changed the configuration
/// meanwhile; `change` may run more than once (once per try), always on the
/// configuration as it then is, and says what it made or why it refuses.
pub async fn edit<T, E>(
    core: &Core,
    name: &str,
    mut change: impl FnMut(&mut TenantFile) -> Result<T, E>,
) -> Result<T, EditError<E>> {
    for _ in 0..TRIES {
        let Some(row) = core.store.tenant_by_name(name).await? else {
            return Err(EditError::NoTenant);
        };
        let mut config: TenantFile = serde_json::from_str(&row.config).map_err(|e| {
            StoreError::Corrupt(format!("tenant {name}: its stored configuration: {e}"))
        })?;
        let made = change(&mut config).map_err(EditError::Refused)?;
        check_config(&mut config, &*core.outside.delivery).map_err(EditError::Invalid)?;
        let json = serde_json::to_string(&config)
            .map_err(|e| StoreError::Corrupt(format!("tenant {name}: {e}")))?;
        if core
            .store
            .replace_tenant_config(name, row.revision, &json, None, core.clock.now())
            .await?
        {
            core.tenants.invalidate();
            return Ok(made);
        }
    }
    Err(EditError::Busy)
}
