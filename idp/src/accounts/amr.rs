//! How a person signed in: the RFC 8176 authentication method references (`amr`) of a
//! sign-in, and the authentication context class (`acr`) they reach. Two levels:
//!
//! | `acr` | reached with | `amr` |
//! | --- | --- | --- |
//! | `urn:idp:acr:pwd` | the password alone | `["pwd"]` |
//! | `urn:idp:acr:mfa` | the password and a code | `["pwd", "otp", "mfa"]` |
//! | `urn:idp:acr:mfa` | the password and a passkey | `["pwd", "hwk", "mfa"]` |
//! | `urn:idp:acr:mfa` | a passkey alone (it verifies the user itself) | `["hwk", "mfa"]` |

/// The password alone.
pub const ACR_PASSWORD: &str = "urn:idp:acr:pwd";
/// The password and a second factor.
pub const ACR_MFA: &str = "urn:idp:acr:mfa";
/// Every level, weakest first (discovery's `acr_values_supported`).
pub const ACR_VALUES: [&str; 2] = [ACR_PASSWORD, ACR_MFA];

/// The methods of one sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Amr(Vec<String>);

impl Amr {
    /// The password alone.
    pub fn password() -> Self {
        Self(vec!["pwd".to_owned()])
    }

    /// The password and a one-time code (an authenticator app or a recovery code).
    pub fn password_and_code() -> Self {
        Self(["pwd", "otp", "mfa"].map(str::to_owned).to_vec())
    }

    /// The password and a passkey.
    pub fn password_and_passkey() -> Self {
        Self(["pwd", "hwk", "mfa"].map(str::to_owned).to_vec())
    }

    /// A passkey alone: a key held on a device, unlocked by the person's PIN or
    /// biometric, is two factors by itself.
    pub fn passkey() -> Self {
        Self(["hwk", "mfa"].map(str::to_owned).to_vec())
    }

    /// From its stored form (space-separated); empty means the password alone, as
    /// every sign-in was before second factors.
    pub fn parse(stored: &str) -> Self {
        let values: Vec<String> = stored.split_whitespace().map(str::to_owned).collect();
        if values.is_empty() {
            Self::password()
        } else {
            Self(values)
        }
    }

    /// The stored form.
    pub fn stored(&self) -> String {
        self.0.join(" ")
    }

    pub fn values(&self) -> &[String] {
        &self.0
    }

    /// The level this sign-in reached.
    pub fn acr(&self) -> &'static str {
        if self.0.iter().any(|m| m == "mfa") {
            ACR_MFA
        } else {
            ACR_PASSWORD
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_factor_reaches_the_mfa_level() {
        assert_eq!(Amr::password().acr(), ACR_PASSWORD);
        assert_eq!(Amr::password_and_code().acr(), ACR_MFA);
        let stored = Amr::password_and_code().stored();
        assert_eq!(stored, "pwd otp mfa");
        assert_eq!(Amr::parse(&stored), Amr::password_and_code());
        assert_eq!(Amr::parse(""), Amr::password());
        assert_eq!(Amr::password_and_passkey().acr(), ACR_MFA);
        assert_eq!(
            Amr::passkey().acr(),
            ACR_MFA,
            "a passkey verifies the user itself"
        );
    }
}
