//! Who may do what. Every endpoint asks here; nothing is allowed that is not listed.

use super::{Actor, Role, Subject};
use crate::domain::ids::{OrganizationId, PractitionerId};
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

/// Roles whose holders may read the cases of teams they belong to.
const CLINICAL: [Role; 7] =
    [Role::Physician, Role::Nurse, Role::CareManager, Role::Pharmacist, Role::Therapist, Role::Msw, Role::Coordinator];

/// Which cases (and through them, which patients) an actor may read. The storage layer turns
/// this into a filter inside the query: lists are never fetched first and checked after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseScope {
    /// Every case managed by this organization (its coordinators and admins).
    pub managing_org: Option<OrganizationId>,
    /// Every case whose care team has this practitioner as a current member.
    pub member: Option<PractitionerId>,
    /// Break-glass: one case read outside the caller's teams, in an emergency (audited).
    pub any: bool,
}

impl CaseScope {
    pub fn is_empty(&self) -> bool {
        self.managing_org.is_none() && self.member.is_none() && !self.any
    }
}

/// DOMAIN.md §3: team members and the base's coordinators are the only people who read a case.
pub fn case_scope(actor: &Actor) -> CaseScope {
    let managing_org = actor.has_any(&[Role::Coordinator, Role::Admin]).then_some(actor.org);
    let member = match actor.subject {
        Subject::Practitioner(id) if actor.has_any(&CLINICAL) => Some(id),
        _ => None,
    };
    CaseScope { managing_org, member, any: false }
}

/// The scope of a single-case read: with a break-glass reason, a physician may read any case
/// (read-only; the access is audited as `break_glass` and listed for review).
pub fn case_read_scope(actor: &Actor, break_glass: Option<&str>) -> Result<CaseScope, ApiError> {
    let mut scope = case_scope(actor);
    if break_glass.is_some() {
        if !actor.has(Role::Physician) || !matches!(actor.subject, Subject::Practitioner(_)) {
            return Err(ApiError::forbidden("Only physicians may read a case under break-glass"));
        }
        scope.any = true;
    }
    Ok(scope)
}

/// Coordinators and admins of the managing organization run its cases and teams.
pub fn manage_case(actor: &Actor, managing_org: OrganizationId) -> Result<(), ApiError> {
    if actor.org == managing_org && actor.has_any(&[Role::Coordinator, Role::Admin]) {
        Ok(())
    } else {
        Err(ApiError::forbidden("Only coordinators of the managing organization may change this case"))
    }
}

/// Patients are registered by a base's coordinators (hospitals register theirs through
/// screening sheets).
pub fn register_patient(actor: &Actor) -> Result<(), ApiError> {
    if actor.has_any(&[Role::Coordinator, Role::Admin]) {
        Ok(())
    } else {
        Err(ApiError::forbidden("Only coordinators may register patients"))
    }
}

/// A practitioner's absences are kept by themselves, or by coordinators and admins of their
/// organization.
pub fn manage_absences(
    actor: &Actor,
    practitioner: PractitionerId,
    practitioner_org: OrganizationId,
) -> Result<(), ApiError> {
    let own = actor.subject == Subject::Practitioner(practitioner);
    let colleague_admin = actor.org == practitioner_org && actor.has_any(&[Role::Coordinator, Role::Admin]);
    if own || colleague_admin {
        Ok(())
    } else {
        Err(ApiError::forbidden("Only the practitioner or their organization's coordinators may change absences"))
    }
}

/// An organization's on-call roster is kept by its own coordinators and admins.
pub fn manage_roster(actor: &Actor, org: OrganizationId) -> Result<(), ApiError> {
    if actor.org == org && actor.has_any(&[Role::Coordinator, Role::Admin]) {
        Ok(())
    } else {
        Err(ApiError::forbidden("Only the organization's coordinators may change its on-call roster"))
    }
}

/// Which screening sheets an actor may read (DOMAIN.md §4). The storage layer turns this into a
/// filter inside the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SheetScope {
    /// Every sheet of this hospital (its discharge staff).
    pub hospital: Option<OrganizationId>,
    /// Every submitted sheet addressed to this base (its coordinators and admins).
    pub base: Option<OrganizationId>,
    /// Every sheet linked to a case whose team has this practitioner now.
    pub member: Option<PractitionerId>,
}

impl SheetScope {
    pub fn is_empty(&self) -> bool {
        self.hospital.is_none() && self.base.is_none() && self.member.is_none()
    }
}

pub fn sheet_scope(actor: &Actor) -> SheetScope {
    SheetScope {
        hospital: actor.has(Role::HospitalDischarge).then_some(actor.org),
        base: actor.has_any(&[Role::Coordinator, Role::Admin]).then_some(actor.org),
        member: case_scope(actor).member,
    }
}

/// A hospital's discharge staff (or its API client) send and correct the hospital's sheets.
pub fn send_screening(actor: &Actor, hospital: OrganizationId) -> Result<(), ApiError> {
    if actor.org == hospital && actor.has(Role::HospitalDischarge) {
        Ok(())
    } else {
        Err(ApiError::forbidden("Only the hospital's discharge staff may send or change its screening sheets"))
    }
}

/// The base's coordinators (and admins) review the sheets addressed to it.
pub fn review_screening(actor: &Actor, base: OrganizationId) -> Result<(), ApiError> {
    if actor.org == base && actor.has_any(&[Role::Coordinator, Role::Admin]) {
        Ok(())
    } else {
        Err(ApiError::forbidden("Only coordinators of the addressed base may review this sheet"))
    }
}

/// An organization's admins and discharge staff keep its own screening templates.
pub fn manage_templates(actor: &Actor, owner: Option<OrganizationId>) -> Result<(), ApiError> {
    if owner == Some(actor.org) && actor.has_any(&[Role::Admin, Role::HospitalDischarge]) {
        Ok(())
    } else {
        Err(ApiError::forbidden("Only the owning organization's admins and discharge staff may change its templates"))
    }
}

/// Which bed requests an actor may read (DOMAIN.md §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BedScope {
    /// Every request addressed to this hospital (its bed managers).
    pub hospital: Option<OrganizationId>,
    /// The requests of the cases the actor may read.
    pub cases: CaseScope,
    /// The requests the actor sent (an on-call physician need not be on the team).
    pub requester: Option<String>,
}

impl BedScope {
    pub fn is_empty(&self) -> bool {
        self.hospital.is_none() && self.cases.is_empty() && self.requester.is_none()
    }
}

pub fn bed_scope(actor: &Actor) -> BedScope {
    BedScope {
        hospital: actor.has(Role::HospitalBedManager).then_some(actor.org),
        cases: case_scope(actor),
        requester: actor.has_any(&[Role::Physician, Role::Coordinator]).then(|| actor.sub()),
    }
}

/// A hospital's bed managers publish its beds and answer the requests addressed to it.
pub fn manage_beds(actor: &Actor, hospital: OrganizationId) -> Result<(), ApiError> {
    if actor.org == hospital && actor.has(Role::HospitalBedManager) {
        Ok(())
    } else {
        Err(ApiError::forbidden("Only the hospital's bed managers may do this"))
    }
}
