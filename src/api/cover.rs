//! `GET /api/v1/cases/{id}/cover` and `…/coverage-notice`: who covers the patient, now or day by
//! day (DOMAIN.md §2). A bounded number of queries, whatever the size of the region.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::{read_case, refuse_case};
use super::care_team::PractitionerSummary;
use crate::audit::Audit;
use crate::auth::Actor;
use crate::db::{cover as facts, patients, Db, DbConn};
use crate::domain::case::Case;
use crate::domain::cover::{Facts, Step, Via};
use crate::domain::ids::{CaseId, OrganizationId, PractitionerId};
use crate::domain::organization::Organization;
use crate::domain::practitioner::Practitioner;
use crate::domain::time::{jst, parse_date, parse_instant, start_of_day_jst, today_jst};
use crate::error::{ApiError, ApiResult, FieldError, Problem};

/// How to reach the covering physician.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Contact {
    #[serde(flatten)]
    pub practitioner: PractitionerSummary,
    pub organization_id: OrganizationId,
    pub organization_name: Option<String>,
    pub organization_phone: Option<String>,
}

/// The answer of `GET …/cover`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CoverView {
    pub case_id: CaseId,
    pub at: DateTime<Utc>,
    /// Whether somebody covers; `false` means the coordinator must act.
    pub resolved: bool,
    pub practitioner: Option<Contact>,
    pub via: Option<Via>,
    /// Every step walked, in order, with why it was skipped.
    pub chain: Vec<Step>,
}

/// Loads the facts overlapping `[from, to)` and the people they name: one statement of a fixed
/// shape (after the case's own read), whatever the size of the team, the roster or the region.
fn load(
    c: &mut DbConn,
    case: &Case,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> ApiResult<(Facts, HashMap<PractitionerId, Contact>)> {
    let f = facts::load(c, case.id, case.managing_organization_id, from, to)?;
    let inactive: HashSet<PractitionerId> = f.people.iter().filter(|(p, _)| !p.active).map(|(p, _)| p.id).collect();
    let contacts = f.people.iter().map(|(p, org)| (p.id, contact(p, Some(org)))).collect();
    Ok((Facts { members: f.members, shifts: f.shifts, absences: f.absences, inactive }, contacts))
}

fn contact(p: &Practitioner, org: Option<&Organization>) -> Contact {
    Contact {
        practitioner: PractitionerSummary::from(p),
        organization_id: p.organization_id,
        organization_name: org.map(|o| o.name.clone()),
        organization_phone: org.and_then(|o| o.phone.clone()),
    }
}

/// Query of `GET …/cover`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CoverQuery {
    /// The instant (RFC 3339, any offset; default now).
    #[param(format = DateTime)]
    at: Option<String>,
}

/// Who covers the patient at an instant, and the chain walked to find out.
#[utoipa::path(
    get, path = "/api/v1/cases/{id}/cover", tag = "cover",
    params(("id" = String, Path, format = Uuid), CoverQuery),
    responses(
        (status = 200, description = "The answer, resolved or not", body = CoverView),
        (status = 400, description = "Invalid instant", body = Problem),
        (status = 404, description = "No such case, or not visible", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}/cover")]
pub async fn cover(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<CaseId>,
    query: web::Query<CoverQuery>,
) -> ApiResult<HttpResponse> {
    let mut errors = Vec::new();
    let at = match query.into_inner().at {
        Some(s) => parse_instant("at", &s, &mut errors),
        None => Some(Utc::now()),
    };
    let Some(at) = at else {
        return refuse_case(&db, &audit, &actor, "case.cover", id.into_inner(), ApiError::validation(errors)).await;
    };
    let view = read_case(&db, &audit, &actor, "case.cover", id.into_inner(), move |c, case| {
        let (facts, contacts) = load(c, case, at, at + Duration::microseconds(1))?;
        let r = facts.resolve(at);
        Ok(CoverView {
            case_id: case.id,
            at,
            resolved: r.practitioner_id.is_some(),
            practitioner: r.practitioner_id.and_then(|p| contacts.get(&p).cloned()),
            via: r.via,
            chain: r.chain,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// One stretch of a day in the notice.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoticePiece {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub via: Option<Via>,
    pub practitioner: Option<Contact>,
}

/// One Japan calendar day of the notice.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoticeDay {
    pub date: NaiveDate,
    /// 月, 火, 水, 木, 金, 土, 日
    pub weekday: String,
    pub pieces: Vec<NoticePiece>,
}

/// The patient's coverage notice.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoticeView {
    pub case_id: CaseId,
    pub patient_name: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The primary physician when the notice starts, and their organization's phone.
    pub primary: Option<Contact>,
    pub days: Vec<NoticeDay>,
}

/// Query of `GET …/coverage-notice`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NoticeQuery {
    /// First Japan date (default today).
    #[param(format = Date)]
    from: Option<String>,
    /// Last Japan date, inclusive (default `from` + 13 days; at most 62 days).
    #[param(format = Date)]
    to: Option<String>,
}

const MAX_NOTICE_DAYS: i64 = 62;

/// The written notice a 在宅療養支援診療所 must give: who covers on which days and how to reach
/// them. JSON, or a printable Japanese page with `Accept: text/html`.
#[utoipa::path(
    get, path = "/api/v1/cases/{id}/coverage-notice", tag = "cover",
    params(("id" = String, Path, format = Uuid), NoticeQuery),
    responses(
        (status = 200, description = "The notice (JSON, or HTML for Accept: text/html)", body = NoticeView),
        (status = 400, description = "Invalid dates", body = Problem),
        (status = 404, description = "No such case, or not visible", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}/coverage-notice")]
pub async fn notice(
    req: HttpRequest,
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<CaseId>,
    query: web::Query<NoticeQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.into_inner();
    let mut errors = Vec::new();
    let from = match q.from {
        Some(d) => parse_date("from", &d, &mut errors),
        None => Some(today_jst(Utc::now())),
    };
    let to = q.to.and_then(|d| parse_date("to", &d, &mut errors));
    let Some(from) = from else {
        return refuse_case(&db, &audit, &actor, "case.coverage_notice", id.into_inner(), ApiError::validation(errors))
            .await;
    };
    let to = to.unwrap_or(from + Duration::days(13));
    if to < from || (to - from).num_days() >= MAX_NOTICE_DAYS {
        errors.push(FieldError::new(
            "to",
            "invalid_period",
            format!("must be on or after from, within {MAX_NOTICE_DAYS} days"),
        ));
    }
    let id = id.into_inner();
    if !errors.is_empty() {
        return refuse_case(&db, &audit, &actor, "case.coverage_notice", id, ApiError::validation(errors)).await;
    }
    let view = read_case(&db, &audit, &actor, "case.coverage_notice", id, move |c, case| {
        let patient = patients::get(c, case.patient_id)?;
        let (start, end) = (start_of_day_jst(from), start_of_day_jst(to + Duration::days(1)));
        let (facts, contacts) = load(c, case, start, end)?;
        let now = Utc::now();
        let first = facts.resolve(if now < end { start.max(now) } else { start });
        let primary = first
            .chain
            .iter()
            .find(|s| s.role == Via::Primary)
            .and_then(|s| s.practitioner_id)
            .and_then(|p| contacts.get(&p).cloned());
        let days = facts
            .notice(from, to)
            .into_iter()
            .map(|d| NoticeDay {
                date: d.date,
                weekday: weekday_ja(d.date).to_owned(),
                pieces: d
                    .pieces
                    .into_iter()
                    .map(|p| NoticePiece {
                        from: p.from,
                        to: p.to,
                        via: p.via,
                        practitioner: p.practitioner_id.and_then(|x| contacts.get(&x).cloned()),
                    })
                    .collect(),
            })
            .collect();
        Ok(NoticeView { case_id: id, patient_name: patient.name, from, to, primary, days })
    })
    .await?;
    let wants_html =
        req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if wants_html {
        return Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(render_html(&view)));
    }
    Ok(HttpResponse::Ok().json(view))
}

fn weekday_ja(d: NaiveDate) -> &'static str {
    ["月", "火", "水", "木", "金", "土", "日"][d.weekday().num_days_from_monday() as usize]
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn hhmm(t: DateTime<Utc>) -> String {
    t.with_timezone(&jst()).format("%H:%M").to_string()
}

fn via_ja(v: Option<Via>) -> &'static str {
    match v {
        Some(Via::Primary) => "主治医",
        Some(Via::Secondary) => "副主治医",
        Some(Via::OnCall) => "当番医",
        None => "連携拠点へ連絡",
    }
}

/// The printable page: plain HTML, no scripts, nothing fetched.
fn render_html(v: &NoticeView) -> String {
    let mut rows = String::new();
    for day in &v.days {
        let n = day.pieces.len().max(1);
        for (i, p) in day.pieces.iter().enumerate() {
            let _ = write!(rows, "<tr>");
            if i == 0 {
                let _ = write!(rows, "<td rowspan=\"{n}\">{}（{}）</td>", day.date.format("%-m月%-d日"), day.weekday);
            }
            let to = if p.to - p.from >= Duration::days(1) || hhmm(p.to) == "00:00" {
                "24:00".to_owned()
            } else {
                hhmm(p.to)
            };
            let (name, phone) = match &p.practitioner {
                Some(c) => (
                    escape(&c.practitioner.name),
                    escape(c.practitioner.phone.as_deref().or(c.organization_phone.as_deref()).unwrap_or("")),
                ),
                None => ("—".to_owned(), String::new()),
            };
            let _ = write!(
                rows,
                "<td>{}〜{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                hhmm(p.from),
                to,
                via_ja(p.via),
                name,
                phone
            );
        }
    }
    let primary = v
        .primary
        .as_ref()
        .map(|c| {
            format!(
                "<p>主治医：{}（{}）　24時間連絡先：{}</p>",
                escape(&c.practitioner.name),
                escape(c.organization_name.as_deref().unwrap_or("")),
                escape(c.organization_phone.as_deref().or(c.practitioner.phone.as_deref()).unwrap_or("未登録"))
            )
        })
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>在宅療養 連絡先のお知らせ</title>\
         <style>body{{font-family:serif;margin:2em}}table{{border-collapse:collapse;width:100%}}\
         td,th{{border:1px solid #333;padding:.3em .5em}}@media print{{body{{margin:0}}}}</style></head><body>\
         <h1>在宅療養 連絡先のお知らせ</h1><p>{} 様</p>{}<p>期間：{} 〜 {}</p>\
         <table><thead><tr><th>日付</th><th>時間</th><th>担当</th><th>医師</th><th>連絡先</th></tr></thead>\
         <tbody>{}</tbody></table>\
         <p>担当医に連絡がつかない場合は、在宅医療連携拠点にご連絡ください。</p></body></html>",
        escape(&v.patient_name),
        primary,
        v.from.format("%Y年%-m月%-d日"),
        v.to.format("%Y年%-m月%-d日"),
        rows
    )
}

/// The practitioner who covers the case at `at` (the same answer as `GET …/cover`).
pub(crate) fn covering(c: &mut DbConn, case: &Case, at: DateTime<Utc>) -> ApiResult<Option<PractitionerId>> {
    let (facts, _) = load(c, case, at, at + Duration::microseconds(1))?;
    Ok(facts.resolve(at).practitioner_id)
}
