//! Recovery codes: the way in when the authenticator is lost. Ten per set, each twelve
//! characters of base32 (60 bits), shown as `abcd-efgh-2345`; typed with or without the
//! dashes, in any case. Only a SHA-256 of the user id and the code is stored: 60 random
//! bits need no slow hash, and the user id keeps one table of guesses from serving
//! every account.

use crate::guards::secrets;

pub const PER_SET: usize = 10;
const CHARS: usize = 12;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A new set, as shown to the person.
pub fn generate() -> Vec<String> {
    (0..PER_SET).map(|_| one()).collect()
}

fn one() -> String {
    let mut bytes = [0u8; CHARS];
    rand::fill(&mut bytes);
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect();
    chars
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// The input in the form codes are hashed in, if it can be a recovery code at all.
pub fn normalise(input: &str) -> Option<String> {
    let code: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (code.len() == CHARS && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// The stored form of `code` (normalised) for `user_id`.
pub fn hash(user_id: &str, code: &str) -> String {
    secrets::hash(&format!("{user_id}:{code}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_ten_distinct_codes_of_sixty_bits() {
        let set = generate();
        assert_eq!(set.len(), 10);
        let distinct: std::collections::HashSet<_> = set.iter().collect();
        assert_eq!(distinct.len(), 10);
        for code in &set {
            assert_eq!(code.len(), 14, "{code}");
            assert_eq!(
                normalise(code).as_deref(),
                Some(code.replace('-', "").as_str())
            );
        }
    }

    #[test]
    fn codes_are_typed_in_any_case_with_or_without_dashes() {
        assert_eq!(
            normalise(" ABCD-efgh 2345 ").as_deref(),
            Some("abcdefgh2345")
        );
        assert_eq!(normalise("abcd-efgh-234"), None, "too short");
        assert_eq!(normalise("abcd-efgh-2341"), None, "1 is not base32");
        assert_eq!(normalise("123456"), None);
    }

    #[test]
    fn hashes_differ_per_user() {
        assert_ne!(hash("u1", "abcdefgh2345"), hash("u2", "abcdefgh2345"));
    }
}
