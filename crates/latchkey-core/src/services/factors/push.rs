//! Push notifications (Auth0 Guardian): not supported yet. The type is
//! known (tenant files and `/me/v1` name it), but nothing enrolls it and a
//! login never offers it.

use super::SecondFactor;
use crate::services::enrollment::EnrollError;
use crate::tenant::FactorType;

/// Not offered at login until push notifications are supported.
pub(crate) const SECOND_FACTOR: Option<SecondFactor> = None;

/// The refusal of an enrollment.
pub(crate) fn start() -> EnrollError {
    EnrollError::Invalid(format!(
        "Enrolling {} methods is not available on this server yet.",
        FactorType::PushNotification
    ))
}
