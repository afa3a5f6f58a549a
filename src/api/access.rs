//! Audited access to patient data: every read and change of a case or patient goes through one
//! of these, so that none is answered without its row in the access log.

use crate::audit::{Audit, Target};
use crate::auth::policy;
use crate::auth::Actor;
use crate::db::{cases, Db, DbConn};
use crate::domain::case::Case;
use crate::domain::ids::{CaseId, PatientId};
use crate::error::{ApiError, ApiResult};

/// Reads one case's data: the case must be visible (break-glass allowed), `f` reads the rest.
/// The access is recorded with the case's patient, even when the caller was refused.
pub async fn read_case<T, F>(
    db: &Db,
    audit: &Audit,
    actor: &Actor,
    action: &'static str,
    id: CaseId,
    f: F,
) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn, &Case) -> ApiResult<T> + Send + 'static,
{
    let scope = audit.break_glass().and_then(|bg| policy::case_read_scope(actor, bg.as_deref()));
    let (result, patient) = db
        .read(move |c| {
            let found = scope.and_then(|scope| Ok(cases::get_visible(c, id, &scope)?));
            // The audit row names the patient also when the case is refused (a second query
            // only then: a read that succeeds has it already).
            let patient = match &found {
                Ok(case) => Some(case.patient_id),
                Err(_) => cases::patient_of(c, id)?,
            };
            Ok::<_, ApiError>((found.and_then(|case| f(c, &case)), patient))
        })
        .await?;
    audit.record(actor, Target::new(action, "case", id).patient(patient), result).await
}

/// Records a request about one case refused before it read anything (a malformed parameter),
/// and answers the refusal.
pub async fn refuse_case<T>(
    db: &Db,
    audit: &Audit,
    actor: &Actor,
    action: &'static str,
    id: CaseId,
    e: ApiError,
) -> ApiResult<T> {
    let patient = db.read(move |c| Ok::<_, ApiError>(cases::patient_of(c, id)?)).await.ok().flatten();
    audit.record(actor, Target::new(action, "case", id).patient(patient), Err(e)).await
}

/// Changes one case's data in one transaction with its audit row. `f` does the checks (with
/// the caller's ordinary scope: break-glass is read-only) and the change.
pub async fn change_case<T, F>(
    db: &Db,
    audit: &Audit,
    actor: &Actor,
    action: &'static str,
    id: CaseId,
    f: F,
) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn) -> ApiResult<T> + Send + 'static,
{
    if let Err(e) = audit.refuse_break_glass() {
        return audit.record(actor, Target::new(action, "case", id), Err(e)).await;
    }
    let (tx_audit, tx_actor) = (audit.clone(), actor.clone());
    let result = db
        .write(move |c| {
            let value = f(c)?;
            let patient = cases::patient_of(c, id)?;
            let entry = tx_audit.entry(&tx_actor, Target::new(action, "case", id).patient(patient), 200);
            tx_audit.append(c, &[&entry])?;
            Ok(value)
        })
        .await;
    if result.is_ok() {
        return result;
    }
    let patient = db.read(move |c| Ok::<_, ApiError>(cases::patient_of(c, id)?)).await.ok().flatten();
    audit.record(actor, Target::new(action, "case", id).patient(patient), result).await
}

/// A change of a patient record (or the creation of one) with its audit row in the same
/// transaction; `f` returns the patient id it touched.
pub async fn change_patient<T, F>(
    db: &Db,
    audit: &Audit,
    actor: &Actor,
    action: &'static str,
    id: Option<PatientId>,
    f: F,
) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn) -> ApiResult<(T, PatientId)> + Send + 'static,
{
    let (tx_audit, tx_actor) = (audit.clone(), actor.clone());
    let refused = audit.refuse_break_glass();
    let status = if id.is_some() { 200 } else { 201 };
    let result = db
        .write(move |c| {
            refused?;
            let (value, patient) = f(c)?;
            let target = Target::new(action, "patient", patient).patient(Some(patient));
            tx_audit.append(c, &[&tx_audit.entry(&tx_actor, target, status)])?;
            Ok(value)
        })
        .await;
    let target = || match id {
        Some(p) => Target::new(action, "patient", p).patient(Some(p)),
        None => Target::collection(action, "patient"),
    };
    audit.after_change(actor, target, result).await
}

/// Changes one patient-data resource other than a case (a screening sheet, a bed request, a
/// backup registration) in one transaction with its access-log rows: first one per record the
/// change created (`*.create` → 201), then the change's own (events follow this order). `f`
/// loads the resource in the caller's scope (404 otherwise), checks and changes it. A refusal is
/// recorded after the rollback, with the resource's patient.
pub async fn change_resource<Id, T, F>(
    db: &Db,
    audit: &Audit,
    actor: &Actor,
    target: (&'static str, &'static str, Id),
    patient_of: fn(&mut DbConn, Id) -> crate::db::DbResult<Option<PatientId>>,
    f: F,
) -> ApiResult<T>
where
    Id: Copy + ToString + Send + 'static,
    T: Send + 'static,
    F: FnOnce(&mut DbConn) -> ApiResult<(T, Vec<Target>)> + Send + 'static,
{
    let (action, kind, id) = target;
    let own = move |patient: Option<PatientId>| Target::new(action, kind, id.to_string()).patient(patient);
    if let Err(e) = audit.refuse_break_glass() {
        return audit.record(actor, own(None), Err(e)).await;
    }
    let (tx_audit, tx_actor) = (audit.clone(), actor.clone());
    let result = db
        .write(move |c| {
            let (value, created) = f(c)?;
            let patient = patient_of(c, id)?;
            let mut entries: Vec<_> = created
                .into_iter()
                .map(|t| {
                    let status = if t.action.ends_with(".create") { 201 } else { 200 };
                    tx_audit.entry(&tx_actor, t, status)
                })
                .collect();
            entries.push(tx_audit.entry(&tx_actor, own(patient), 200));
            tx_audit.append(c, &entries.iter().collect::<Vec<_>>())?;
            Ok(value)
        })
        .await;
    if result.is_ok() {
        return result;
    }
    let patient = db.read(move |c| Ok::<_, ApiError>(patient_of(c, id)?)).await.ok().flatten();
    audit.record(actor, own(patient), result).await
}
