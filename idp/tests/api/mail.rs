//! Mail through the outbox (issue 14): queued with the change that causes it, delivered
//! over real SMTP to a sink on port 0, retried when the server fails, sent exactly once
//! when it recovers, kept across restarts, dead letters listed and sent again, and not
//! sent twice by two instances on one database.

use chrono::Duration;
use idp::cli::{MailCommand, Retry};
use idp::storage::outbox::Table;
use reqwest::header::USER_AGENT;
use serde_json::json;
use service_kit::clock::Clock;
use service_kit::testing::fresh_database;

use crate::helpers::{PASSWORD, TestApp, spawn_app_with, spawn_app_with_clock};
use crate::smtp_sink::{SmtpSink, part};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const NEW_PASSWORD: &str = "an entirely new passphrase";
const NOTICE: &str = "Your password was changed";

async fn app_mailing_to(
    sink: &SmtpSink,
    customise: impl FnOnce(&mut idp::app::settings::Settings),
) -> TestApp {
    let url = sink.url.clone();
    spawn_app_with_clock(fresh_database("idp").await, Clock::system(), move |s| {
        s.smtp_url = Some(idp::app::settings::SmtpUrlSetting(url));
        s.mail_from = Some("Example ID <id@example.com>".to_owned());
        // Only woken by new mail: the test drives retries itself.
        s.mail_poll_secs = 3600;
        customise(s);
    })
    .await
}

/// Registers `email` and changes its password through the JSON API: one notice queued.
async fn change_password(app: &TestApp, email: &str, new: &str) {
    let access = app.login(email).await;
    let response = app
        .client
        .post(app.url("/auth/password"))
        .bearer_auth(access)
        .header(USER_AGENT, FIREFOX)
        .json(&json!({"current_password": PASSWORD, "new_password": new}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

/// Waits until the first attempt at every queued message failed and let go of its lease
/// (so moving the clock hands nothing under way to a second sender); the notice's error.
async fn first_attempt_over(app: &TestApp) -> String {
    first_attempts_over(app, NOTICE).await
}

/// [`first_attempt_over`], for a queue whose message with `subject` tells the error.
async fn first_attempts_over(app: &TestApp, subject: &str) -> String {
    for _ in 0..600 {
        let (unsettled,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM mail_outbox WHERE last_error IS NULL OR lease_until <> 0",
        )
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        if unsettled == 0 {
            let (error,): (String,) =
                sqlx::query_as("SELECT last_error FROM mail_outbox WHERE subject = $1")
                    .bind(subject)
                    .fetch_one(&app.db.pool)
                    .await
                    .unwrap();
            return error;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no failed attempt");
}

/// The password change notices in the outbox (registration queues a verification mail
/// too): attempts, sent, failed, text.
async fn outbox(app: &TestApp) -> Vec<(i64, Option<i64>, Option<i64>, String)> {
    sqlx::query_as(
        "SELECT attempts, sent_at, failed_at, message FROM mail_outbox WHERE subject = $1 \
         ORDER BY id",
    )
    .bind(NOTICE)
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_password_change_is_told_by_mail_over_smtp() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, |_| {}).await;
    app.register("ada@example.com").await;
    change_password(&app, "ada@example.com", NEW_PASSWORD).await;

    let received = sink.wait_for_subject(NOTICE, 1).await;
    assert_eq!(received.len(), 1);
    let mail = &received[0];
    assert_eq!(mail.from, "id@example.com");
    assert_eq!(mail.to, ["ada@example.com"]);
    assert!(
        mail.data
            .contains("From: \"Example ID\" <id@example.com>\r\n"),
        "{}",
        mail.data
    );
    assert!(mail.data.contains("To: ada@example.com\r\n"));
    assert!(mail.data.contains("Subject: Your password was changed\r\n"));
    assert!(mail.data.contains("Content-Type: multipart/alternative"));
    let account = app.url("/account");
    for content_type in ["text/plain", "text/html"] {
        let body = part(&mail.data, content_type);
        for fact in ["Firefox on Linux", "127.0.0.1", " UTC", account.as_str()] {
            assert!(body.contains(fact), "{content_type} lacks {fact:?}: {body}");
        }
        assert!(!body.contains(NEW_PASSWORD) && !body.contains(PASSWORD));
    }
    let html = part(&mail.data, "text/html");
    assert!(
        !html.contains("<img") && !html.contains("src="),
        "no remote images"
    );
    // Sent once, and its text is gone from the database.
    assert_eq!(outbox(&app).await.len(), 1);
    let (attempts, sent_at, failed_at, message) = outbox(&app).await.remove(0);
    assert_eq!((attempts, failed_at, message.as_str()), (1, None, ""));
    assert!(sent_at.is_some());
}

/// A server that refuses (451), then one that is down, then one that accepts: the
/// message is retried with backoff and arrives exactly once.
#[tokio::test]
async fn mail_is_retried_until_the_server_takes_it_and_sent_exactly_once() {
    let sink = SmtpSink::start().await;
    sink.refuse_with(Some("451 4.3.0 Try again later"));
    let app = app_mailing_to(&sink, |_| {}).await;
    app.register("ada@example.com").await;
    change_password(&app, "ada@example.com", NEW_PASSWORD).await;

    // The sender was woken at once, and failed.
    let error = first_attempt_over(&app).await;
    assert_eq!(outbox(&app).await[0].0, 1);
    assert!(error.contains("451"), "{error}");
    // Not due again before the backoff.
    sink.refuse_with(None);
    assert_eq!(app.mail_sender.deliver_due().await.unwrap(), 0);
    assert!(sink.received().is_empty());

    // Due now: the notice and the registration's verification mail, refused alike.
    app.clock.shift(Duration::seconds(61));
    assert_eq!(app.mail_sender.deliver_due().await.unwrap(), 2);
    app.clock.shift(Duration::hours(2));
    assert_eq!(app.mail_sender.deliver_due().await.unwrap(), 0);
    assert_eq!(sink.wait_for_subject(NOTICE, 1).await.len(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(sink.received().len(), 2, "each exactly once");
    assert_eq!(sink.wait_for_subject(NOTICE, 1).await.len(), 1);
}

/// A server that accepts the connection and then says nothing costs one attempt of
/// `IDP_SMTP_TIMEOUT_SECS`, not the sender: the message is retried and arrives.
#[tokio::test]
async fn a_hung_server_times_out_and_the_message_is_retried() {
    let sink = SmtpSink::start().await;
    sink.stall(true);
    let app = app_mailing_to(&sink, |s| s.smtp_timeout_secs = 1).await;
    let started = std::time::Instant::now();
    app.register("ada@example.com").await;
    let error = first_attempts_over(&app, "Confirm your email address").await;
    assert!(
        error.contains("timed out") || error.contains("longer than"),
        "{error}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    sink.stall(false);
    app.clock.shift(Duration::seconds(61));
    assert_eq!(app.mail_sender.deliver_due().await.unwrap(), 1);
    assert_eq!(sink.received().len(), 1);
}

/// Mail queued while the server is down waits in the database: an idp started later
/// delivers it.
#[tokio::test]
async fn mail_pending_at_shutdown_is_sent_after_a_restart() {
    let down = "smtp://127.0.0.1:1".to_owned();
    let database = fresh_database("idp").await;
    let app = spawn_app_with(database, |s| {
        s.smtp_url = Some(idp::app::settings::SmtpUrlSetting(down));
        s.mail_poll_secs = 3600;
    })
    .await;
    app.register("ada@example.com").await;
    change_password(&app, "ada@example.com", NEW_PASSWORD).await;
    assert_eq!(app.mail_sender.deliver_due().await.unwrap(), 0);
    let database = app.stop().await;

    let sink = SmtpSink::start().await;
    let url = sink.url.clone();
    let app = spawn_app_with(database, move |s| {
        s.smtp_url = Some(idp::app::settings::SmtpUrlSetting(url));
        s.mail_poll_secs = 3600;
    })
    .await;
    app.clock.shift(Duration::minutes(5));
    assert_eq!(
        app.mail_sender.deliver_due().await.unwrap(),
        2,
        "notice and verification"
    );
    assert_eq!(
        sink.wait_for_subject(NOTICE, 1).await[0].to,
        ["ada@example.com"]
    );
}

/// After `IDP_MAIL_MAX_ATTEMPTS` failures a message is a dead letter: listed, never
/// dropped, and `idp mail retry` sends it again.
#[tokio::test]
async fn dead_letters_are_listed_and_sent_again_on_request() {
    let sink = SmtpSink::start().await;
    sink.refuse_with(Some("554 5.7.1 Rejected"));
    let app = app_mailing_to(&sink, |s| s.mail_max_attempts = 2).await;
    app.register("ada@example.com").await;
    change_password(&app, "ada@example.com", NEW_PASSWORD).await;
    // The sender woken by the change makes the first attempt; the test drives the rest.
    first_attempt_over(&app).await;
    for _ in 0..3 {
        app.mail_sender.deliver_due().await.unwrap();
        app.clock.shift(Duration::minutes(10));
    }
    // The notice, and the registration's verification mail beside it.
    let unsent: Vec<_> = idp::mail::store::unsent(&app.db.pool)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.subject == NOTICE)
        .collect();
    assert_eq!(unsent.len(), 1);
    assert_eq!(unsent[0].delivery.attempts, 2);
    assert!(unsent[0].delivery.failed_at.is_some(), "a dead letter");
    assert!(
        unsent[0]
            .delivery
            .last_error
            .as_deref()
            .unwrap()
            .contains("554")
    );
    app.clock.shift(Duration::days(1));
    assert_eq!(
        app.mail_sender.deliver_due().await.unwrap(),
        0,
        "never again by itself"
    );

    sink.refuse_with(None);
    let retry = MailCommand::Retry(Retry {
        id: Some(unsent[0].id.clone()),
        all: false,
    });
    idp::cli::run_mail(retry, &app.settings).await.unwrap();
    app.clock.shift(Duration::seconds(1));
    assert_eq!(app.mail_sender.deliver_due().await.unwrap(), 1);
    assert_eq!(sink.wait_for_subject(NOTICE, 1).await.len(), 1);
    let unsent = idp::mail::store::unsent(&app.db.pool).await.unwrap();
    assert!(unsent.iter().all(|m| m.subject != NOTICE), "sent");
    assert_eq!(
        unsent.len(),
        1,
        "the other dead letter waits for its own retry"
    );
}

/// Two instances on one database draining one outbox at once send each message once.
#[tokio::test]
async fn two_instances_on_one_database_do_not_send_a_message_twice() {
    let sink = SmtpSink::start().await;
    let first = app_mailing_to(&sink, |_| {}).await;
    // Queued while the server refuses, so both instances find all of them due at once.
    sink.refuse_with(Some("451 4.3.0 Busy"));
    let people: Vec<String> = (0..12).map(|i| format!("user{i}@example.com")).collect();
    for email in &people {
        first.register(email).await;
        change_password(&first, email, NEW_PASSWORD).await;
    }
    let url = sink.url.clone();
    let second = spawn_app_with(first.database.clone(), move |s| {
        s.smtp_url = Some(idp::app::settings::SmtpUrlSetting(url));
        s.mail_poll_secs = 3600;
    })
    .await;
    // Every first attempt is over (refused) and nothing is in flight before the clocks
    // move: moving them past a lease while a send is under way would hand the message
    // to a second sender, which is the lease's whole point.
    first_attempt_over(&first).await;
    sink.refuse_with(None);
    first.clock.shift(Duration::hours(1));
    second.clock.shift(Duration::hours(1));
    // Both drain at once.
    let (a, b) = tokio::join!(
        first.mail_sender.deliver_due(),
        second.mail_sender.deliver_due()
    );
    a.unwrap();
    b.unwrap();
    // Each person gets their verification mail and their notice, each once.
    for subject in [NOTICE, "Confirm your email address"] {
        let mut recipients: Vec<String> = sink
            .wait_for_subject(subject, people.len())
            .await
            .into_iter()
            .flat_map(|m| m.to)
            .collect();
        recipients.sort();
        let mut expected = people.clone();
        expected.sort();
        assert_eq!(recipients, expected, "{subject}: each once");
    }
    assert_eq!(sink.received().len(), 2 * people.len());
}

/// An attempt whose lease ran out mid-send is overtaken by a later one, and its failure,
/// recorded last, changes nothing: it neither reschedules the message nor takes it out
/// of the dead letters.
#[tokio::test]
async fn an_overtaken_attempt_does_not_decide_the_outcome() {
    let sink = SmtpSink::start().await;
    sink.refuse_with(Some("451 4.3.0 Busy"));
    let app = app_mailing_to(&sink, |s| s.mail_max_attempts = 3).await;
    app.register("ada@example.com").await;
    change_password(&app, "ada@example.com", NEW_PASSWORD).await;
    first_attempt_over(&app).await;
    let pool = &app.db.pool;
    let notice = |claimed: Vec<idp::mail::store::Claimed>| {
        claimed
            .into_iter()
            .find(|m| m.message.contains(&format!("Subject: {NOTICE}")))
            .expect("the notice is due")
    };
    let t = app.clock.now().timestamp() + 3600;
    let overtaken = notice(
        idp::mail::store::claim_due(pool, t, t + 120, 10)
            .await
            .unwrap(),
    );
    // Its lease runs out before it is done: another attempt claims the message.
    let later = notice(
        idp::mail::store::claim_due(pool, t + 200, t + 320, 10)
            .await
            .unwrap(),
    );
    assert_eq!((overtaken.attempts, later.attempts), (2, 3));
    idp::storage::outbox::mark_failed(
        pool,
        Table::Mail,
        (&later.id, later.attempts),
        "later",
        t + 900,
        Some(t + 200),
    )
    .await
    .unwrap();
    idp::storage::outbox::mark_failed(
        pool,
        Table::Mail,
        (&overtaken.id, overtaken.attempts),
        "overtaken",
        t + 400,
        None,
    )
    .await
    .unwrap();
    let (last_error, failed_at): (String, Option<i64>) =
        sqlx::query_as("SELECT last_error, failed_at FROM mail_outbox WHERE subject = $1")
            .bind(NOTICE)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(last_error, "later");
    assert_eq!(failed_at, Some(t + 200), "still a dead letter");
}
