//! The idp's integration suite: one binary (linking dominates on 2 cores), a module per
//! feature. Every test talks HTTP to a real server on port 0 with a fresh database
//! (SQLite by default, PostgreSQL with TEST_DATABASE=postgres).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod discovery;
mod health;
mod helpers;
mod login;
mod pages;
mod persistence;
mod register;
