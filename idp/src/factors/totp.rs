//! Authenticator apps (RFC 6238): 160-bit secrets, 30-second steps, six digits,
//! HMAC-SHA-1 (what every authenticator app supports), one step of drift either way.
//! The algorithm is `totp-rs`'s; refusing a code twice is ours ([`super::store`] keeps
//! the last accepted step). The QR code is drawn here as inline SVG: no image request,
//! and the secret never leaves the page.

use anyhow::Context;
use qrcode::QrCode;
use qrcode::render::svg;
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// Seconds per time step.
pub const STEP_SECS: u64 = 30;
/// Bytes of a new secret (RFC 4226 §4 recommends 160 bits).
pub const SECRET_BYTES: usize = 20;

/// A new random secret.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    rand::fill(secret.as_mut_slice());
    secret
}

fn totp(secret: &[u8], account: &str, issuer: &str) -> anyhow::Result<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(STEP_SECS)
        .with_secret(Secret::from(secret.to_vec()))
        .with_account_name(account.replace(':', ""))
        .with_issuer(Some(issuer.replace(':', "")))
        .build()
        .context("An authenticator secret was refused")
}

/// The time step `code` is right for at `now` (Unix seconds), within one step of drift.
pub fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let now = u64::try_from(now).ok()?;
    let totp = totp(secret, "", "").ok()?;
    totp.check(code, now)
        .and_then(|step| i64::try_from(step).ok())
}

/// What the person needs to add the secret to an app: the secret in base32 (to type),
/// the `otpauth://` URI and that URI as a QR code (SVG).
pub struct Provisioning {
    pub secret_base32: String,
    pub uri: String,
    pub qr_svg: String,
}

/// `account` (the person's address) and `issuer` (this service) label the entry in the
/// app.
pub fn provisioning(secret: &[u8], account: &str, issuer: &str) -> anyhow::Result<Provisioning> {
    let totp = totp(secret, account, issuer)?;
    let uri = totp.to_url().context("No otpauth URI")?;
    let qr_svg = QrCode::new(uri.as_bytes())
        .context("The otpauth URI does not fit a QR code")?
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    // Inline in a page: no XML prologue, and a name for screen readers.
    let svg_start = qr_svg.find("<svg").context("No <svg> element")?;
    let qr_svg = qr_svg[svg_start..].replacen(
        "<svg",
        r#"<svg role="img" aria-label="QR code to scan with your authenticator app""#,
        1,
    );
    Ok(Provisioning {
        secret_base32: totp.secret().to_base32(),
        uri,
        qr_svg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows: the 20-byte ASCII secret, eight-digit codes;
    /// our six digits are their last six (the same truncation, modulo 10^6).
    #[test]
    fn the_rfc_6238_test_vectors_hold() {
        let secret = b"12345678901234567890";
        let vectors = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (time, expected) in vectors {
            let code = &expected[2..];
            assert_eq!(
                matching_step(secret, code, time),
                Some(time / 30),
                "T = {time}"
            );
        }
    }

    #[test]
    fn one_step_of_drift_is_accepted_and_no_more() {
        let secret = new_secret();
        let now = 1_700_000_000;
        let totp = totp(&secret, "", "").unwrap();
        let code_at = |t: i64| totp.generate(u64::try_from(t).unwrap()).to_string();
        assert_eq!(matching_step(&secret, &code_at(now), now), Some(now / 30));
        assert!(matching_step(&secret, &code_at(now - 30), now).is_some());
        assert!(matching_step(&secret, &code_at(now + 30), now).is_some());
        assert_eq!(matching_step(&secret, &code_at(now - 90), now), None);
        assert_eq!(matching_step(&secret, &code_at(now + 90), now), None);
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "abcdef", now), None);
    }

    #[test]
    fn provisioning_names_the_account_and_draws_a_qr_code() {
        let secret = new_secret();
        let p = provisioning(&secret, "ada@example.com", "localhost").unwrap();
        assert!(p.uri.starts_with("otpauth://totp/"), "{}", p.uri);
        assert!(p.uri.contains(&format!("secret={}", p.secret_base32)));
        assert!(p.uri.contains("issuer=localhost"));
        assert!(p.qr_svg.starts_with("<svg role=\"img\""), "{}", p.qr_svg);
        assert_eq!(p.secret_base32.len(), 32, "160 bits in base32");
    }
}
