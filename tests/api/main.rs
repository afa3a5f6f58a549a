//! The integration suite: the real application over HTTP, one fresh database per test.
//! Runs on SQLite by default and on PostgreSQL when `RENKEI_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod auth;
mod beds;
mod care_team;
mod cases;
mod cli;
mod clients;
mod cover;
mod errors;
mod events;
mod helpers;
mod idempotency;
mod idp;
mod operations;
mod organizations;
mod patients;
mod practitioners;
mod registrations;
mod schedule;
mod screenings;
mod storage;
mod webhooks;
