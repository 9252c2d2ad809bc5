//! Sealed page cursors for the public lists.
//!
//! A public list shows a person's identifier without the month and day of
//! birth (`SubjectId::public_form`), yet its pages follow one another in
//! identifier order, so the place where a page ends is a whole identifier.
//! Handed out in the clear, that cursor would give the hidden digits away;
//! taken back from anyone, it would let a caller find them by bisection
//! (start after a guess, see whether the entry comes first). So the cursor
//! is the identifier encrypted and authenticated under a key that only
//! the registry holds (ChaCha20-Poly1305, from `ring`, which the PostgreSQL
//! client's TLS already builds), bound to the list it pages, and the
//! server takes back no other: a cursor the registry did not issue, or one
//! for another list, is refused, and the caller starts from the first page
//! again. The key is kept in the store (`Store::secret`, under
//! [`CURSOR_KEY`]), made by the first server to start on it: every server
//! of one database takes the others' cursors, and a restart keeps them
//! valid. Whoever reads the store's tables could open cursors, but reads
//! the identifiers there anyway.

use anyhow::Context as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use socred_core::SubjectId;
use socred_store::Store;

/// The name of the cursor key among the store's secrets.
pub const CURSOR_KEY: &str = "public_list_cursor_key";

/// Bytes of the key.
const KEY_BYTES: usize = 32;

/// The key that seals and opens cursors.
pub struct CursorSeal {
    key: LessSafeKey,
}

impl std::fmt::Debug for CursorSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSeal(..)")
    }
}

/// Why a cursor was not taken back.
#[derive(Debug, PartialEq, Eq)]
pub struct ForeignCursor;

impl CursorSeal {
    /// A fresh key from the operating system's random source.
    #[cfg(test)]
    fn new() -> anyhow::Result<CursorSeal> {
        Self::with_key(&fresh_key()?)
    }

    /// The key that `store` keeps, or a fresh one that it keeps from now on.
    pub async fn kept_by(store: &dyn Store) -> anyhow::Result<CursorSeal> {
        let key = store
            .secret(CURSOR_KEY, &fresh_key()?)
            .await
            .context("cannot read the public lists' cursor key")?;
        Self::with_key(&key)
    }

    fn with_key(bytes: &[u8]) -> anyhow::Result<CursorSeal> {
        if bytes.len() != KEY_BYTES {
            anyhow::bail!(
                "the public lists' cursor key has {} bytes, not {KEY_BYTES}",
                bytes.len()
            );
        }
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes)
            .map_err(|_| anyhow::anyhow!("cannot make a cursor key"))?;
        Ok(CursorSeal {
            key: LessSafeKey::new(key),
        })
    }

    /// `subject`, the last entry of a page of `list`, as an opaque cursor:
    /// lower-case hex of a random nonce, the sealed identifier and its tag.
    pub fn seal(&self, list: &str, subject: SubjectId) -> anyhow::Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        random(&mut nonce)?;
        let mut sealed = subject.as_str().as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(list.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| anyhow::anyhow!("cannot seal a cursor"))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(hex::encode(bytes))
    }

    /// The identifier inside a cursor that `seal` made for `list`.
    pub fn open(&self, list: &str, cursor: &str) -> Result<SubjectId, ForeignCursor> {
        let bytes = hex::decode(cursor).map_err(|_| ForeignCursor)?;
        if bytes.len() <= NONCE_LEN {
            return Err(ForeignCursor);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| ForeignCursor)?;
        let mut sealed = sealed.to_vec();
        let text = self
            .key
            .open_in_place(nonce, Aad::from(list.as_bytes()), &mut sealed)
            .map_err(|_| ForeignCursor)?;
        let text = std::str::from_utf8(text).map_err(|_| ForeignCursor)?;
        SubjectId::parse(text)
            .map(|parsed| parsed.id)
            .map_err(|_| ForeignCursor)
    }
}

fn fresh_key() -> anyhow::Result<[u8; KEY_BYTES]> {
    let mut bytes = [0u8; KEY_BYTES];
    random(&mut bytes)?;
    Ok(bytes)
}

fn random(bytes: &mut [u8]) -> anyhow::Result<()> {
    getrandom::fill(bytes)
        .map_err(|error| anyhow::anyhow!("cannot read the system's random source: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> SubjectId {
        SubjectId::parse("11010519491231002X").unwrap().id
    }

    #[test]
    fn a_cursor_opens_to_its_identifier_and_hides_it() {
        let seal = CursorSeal::new().unwrap();
        let cursor = seal.seal("judgment_defaulters", person()).unwrap();
        assert!(!cursor.contains("1231"), "{cursor}");
        assert_ne!(
            cursor,
            seal.seal("judgment_defaulters", person()).unwrap(),
            "two cursors for one entry look alike"
        );
        assert_eq!(seal.open("judgment_defaulters", &cursor), Ok(person()));
    }

    #[test]
    fn only_this_seal_and_this_list_take_a_cursor_back() {
        let seal = CursorSeal::new().unwrap();
        let cursor = seal.seal("judgment_defaulters", person()).unwrap();
        assert_eq!(seal.open("rail_ticket_ban", &cursor), Err(ForeignCursor));
        let other = CursorSeal::new().unwrap();
        assert_eq!(
            other.open("judgment_defaulters", &cursor),
            Err(ForeignCursor)
        );
        // A flipped bit, a cut, the identifier itself, nothing at all.
        let mut flipped = cursor.clone().into_bytes();
        flipped[30] = if flipped[30] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        for junk in [flipped.as_str(), &cursor[..40], "11010519491231002X", ""] {
            assert_eq!(
                seal.open("judgment_defaulters", junk),
                Err(ForeignCursor),
                "{junk}"
            );
        }
    }
}
