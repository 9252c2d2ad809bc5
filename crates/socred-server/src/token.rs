//! Bearer tokens: 32 random bytes from the operating system, written as 64
//! hex characters. The server hands a token out once and keeps only its
//! SHA-256 (`socred_store::hash_token`).

/// Bytes of randomness in a token.
const TOKEN_BYTES: usize = 32;

/// A fresh token from the operating system's random source.
pub fn new_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|error| anyhow::anyhow!("cannot read the system's random source: {error}"))?;
    Ok(hex::encode(bytes))
}

/// Whether `text` looks like a token at all (so that garbage in the
/// Authorization header is refused before it is hashed and looked up).
pub fn plausible_token(text: &str) -> bool {
    (16..=256).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_64_hex_characters_and_differ() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(plausible_token(&a));
        assert!(!plausible_token("short"));
        assert!(!plausible_token("has a space in it somewhere"));
    }
}
