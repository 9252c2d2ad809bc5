//! Credit subject identifiers: the Resident Identity Card number (GB 11643-1999)
//! of a person and the Unified Social Credit Code (GB 32100-2015) of an
//! organisation.
//!
//! Both are 18 characters long and either can be all digits, so telling them
//! apart is part of validation. The rules, in order:
//!
//! 1. Seventeen digits with a first digit 1-8 (a province) are a person
//!    number. If the MOD 11-2 check fails, the string is still accepted as an
//!    organisation when it is a fully valid USCC (mod 31 check *and* the
//!    GB 11714 check of its embedded organisation code): some real codes of
//!    government bodies and institutions have exactly this shape. Otherwise the
//!    error names the birth date, the last character or the check character.
//! 2. A first digit 1-8 followed by exactly one non-digit among positions
//!    2-17 is a person number with a typo, unless it is a fully valid USCC.
//!    The error points at the stray character.
//! 3. Everything else is a USCC. A wrong check character is accepted with
//!    [`IdWarning::PilotCheckCharacter`] when the rest of the code is well
//!    formed (a registration authority code in position 1 and a valid
//!    organisation code in positions 9-17): legally issued early pilot codes
//!    such as `91350100M0001TGQXM` look like that. It is never silent.
//!
//! Why not the simpler "person-shaped means person": a real USCC can have a
//! county code ending in 19 or 20 followed by an all-digit organisation code
//! that reads as a date, and must not be refused. Why the typo rule: both
//! check schemes catch every single wrong character within their own scheme,
//! and a mistyped person number should be reported as such, not accepted as a
//! pilot organisation code.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of subject an identifier names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Person,
    Organisation,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Person => "person",
            SubjectKind::Organisation => "organisation",
        }
    }
}

/// A validated, normalised (upper case) 18-character subject identifier and
/// the kind of subject it names, decided once when it was parsed.
///
/// Ordering and hashing look at the characters first; the kind follows from
/// them, so two equal texts always have the same kind.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubjectId {
    bytes: [u8; 18],
    kind: SubjectKind,
}

/// A warning that does not make an identifier invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdWarning {
    /// An organisation code whose check character does not match: some legally
    /// issued early pilot codes are like this.
    PilotCheckCharacter { expected: char, found: char },
}

impl fmt::Display for IdWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdWarning::PilotCheckCharacter { expected, found } => write!(
                f,
                "check character is `{found}`, expected `{expected}`: accepted as an early pilot \
                 Unified Social Credit Code"
            ),
        }
    }
}

/// Why an identifier is invalid. Positions are 1-based.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("identifier has {found} characters, expected 18")]
    Length { found: usize },
    #[error(
        "character `{}` at position {position} is not allowed here ({expected}){}",
        crate::printable::printable(found.encode_utf8(&mut [0; 4])),
        full_width_hint(*found)
    )]
    Character {
        position: usize,
        found: char,
        expected: &'static str,
    },
    #[error("birth date {text} in positions 7-14 does not exist")]
    BirthDate { text: String },
    #[error(
        "birth year {year} in positions 7-10 is outside 1900-2099, the years a number may carry"
    )]
    BirthYear { year: u16 },
    #[error("check character at position 18 is `{found}`, expected `{expected}`")]
    CheckCharacter { expected: char, found: char },
}

/// What a full-width character (U+FF01 to U+FF5E, as Chinese input
/// methods type them) stands for, said after the error: it looks right to
/// whoever reads the identifier. It is not taken in its place: the provider
/// that sent it has a bug to fix.
fn full_width_hint(found: char) -> String {
    let code = u32::from(found);
    if !(0xFF01..=0xFF5E).contains(&code) {
        return String::new();
    }
    char::from_u32(code - 0xFF01 + 0x21).map_or_else(String::new, |ascii| {
        format!("; `{found}` is the full-width form of `{ascii}`")
    })
}

/// A parsed identifier with any warning it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub id: SubjectId,
    pub warning: Option<IdWarning>,
}

const LEN: usize = 18;

/// ISO 7064 MOD 11-2 weights of the first 17 digits of a person number.
const PERSON_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character of a person number, indexed by the weighted sum mod 11.
const PERSON_CHECK: &[u8; 11] = b"10X98765432";

/// The 31 characters of a USCC; a character's value is its index.
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// USCC weights: 3^(i-1) mod 31 for i = 1..17.
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
/// GB 11714 weights of the 8 body characters of an organisation code.
const ORG_CODE_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
/// Registration authority codes of GB 32100 (position 1 of a USCC).
const AUTHORITY_CODES: &[u8] = b"123456789ANY";

/// Marks a byte that is not a USCC character in [`USCC_VALUES`].
const NOT_USCC: u8 = u8::MAX;

/// Value of each ASCII byte in the USCC alphabet, or [`NOT_USCC`].
const USCC_VALUES: [u8; 128] = {
    let mut table = [NOT_USCC; 128];
    let mut i = 0;
    while i < USCC_ALPHABET.len() {
        table[USCC_ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Stands in for a non-ASCII character in the normalised bytes: it is
/// neither a digit nor a USCC character, so every rule treats it as wrong.
const NON_ASCII: u8 = 0;

const EXPECTED_DIGIT: &str = "a digit";
const EXPECTED_PERSON_CHECK: &str = "a digit or X";
const EXPECTED_USCC: &str = "a USCC character (0-9 and A-Z without I, O, S, V, Z)";
const EXPECTED_AUTHORITY: &str = "a registration authority code of GB 32100: 1-9, A, N or Y";

/// Birth years a person number may carry. The lower bound is the standard's
/// (nobody alive was born earlier); the upper one keeps a mistyped century
/// from reading as a real date.
const BIRTH_YEAR_MIN: i16 = 1900;
const BIRTH_YEAR_MAX: i16 = 2099;

impl SubjectId {
    /// A key that sorts like the identifier's bytes: the first sixteen
    /// bytes as a big-endian number, then the last two. Sorting millions of
    /// subjects by integers is several times faster than by 18-byte strings.
    pub fn sort_key(&self) -> (u128, u16) {
        let mut head = [0u8; 16];
        head.copy_from_slice(&self.bytes[..16]);
        (
            u128::from_be_bytes(head),
            u16::from_be_bytes([self.bytes[16], self.bytes[17]]),
        )
    }
}

impl SubjectId {
    /// Validates and normalises an identifier (see the module docs for how
    /// persons and organisations are told apart).
    pub fn parse(text: &str) -> Result<Parsed, IdError> {
        let (chars, bytes) = normalise(text)?;
        let province = matches!(bytes[0], b'1'..=b'8');
        let non_digits = bytes[1..17].iter().filter(|b| !b.is_ascii_digit()).count();
        if province && non_digits == 0 {
            return parse_person_shaped(&chars, bytes);
        }
        if province && non_digits == 1 {
            if is_full_uscc(&bytes) {
                return Ok(organisation_parsed(bytes, None));
            }
            let index = (1..17).find(|&i| !bytes[i].is_ascii_digit()).unwrap_or(1);
            return Err(character_error(&chars, index, EXPECTED_DIGIT));
        }
        parse_uscc(&chars, bytes)
    }

    /// A person number from its parts, with the check character computed.
    /// `None` when a part is out of range: the region must be six digits
    /// starting 1-8, the birth date real and in 1900-2099, the sequence at
    /// most 999 (odd for men).
    pub fn person(region: u32, year: i16, month: i8, day: i8, sequence: u16) -> Option<SubjectId> {
        if !(100_000..=899_999).contains(&region) || sequence > 999 {
            return None;
        }
        if !(BIRTH_YEAR_MIN..=BIRTH_YEAR_MAX).contains(&year) || !date_exists(year, month, day) {
            return None;
        }
        let mut bytes = [b'0'; LEN];
        write_digits(&mut bytes[0..6], region);
        write_digits(&mut bytes[6..10], year as u32);
        write_digits(&mut bytes[10..12], month as u32);
        write_digits(&mut bytes[12..14], day as u32);
        write_digits(&mut bytes[14..17], u32::from(sequence));
        bytes[17] = person_check(&bytes)?;
        Some(SubjectId {
            bytes,
            kind: SubjectKind::Person,
        })
    }

    /// A Unified Social Credit Code from its parts: the registration
    /// authority and organisation type (e.g. `*b"91"` for an enterprise
    /// registered by market regulation), the six-digit region and the 8-character
    /// body of the organisation code. Both the organisation code's GB 11714
    /// check character and the USCC check character are computed.
    ///
    /// `None` when a part is out of range or when the result would read as a
    /// person number (an all-digit code of a body registered in 1-8 can):
    /// the caller then picks another body.
    pub fn organisation(registration: [u8; 2], region: u32, body: [u8; 8]) -> Option<SubjectId> {
        if region > 999_999 {
            return None;
        }
        let mut bytes = [b'0'; LEN];
        bytes[0] = registration[0].to_ascii_uppercase();
        bytes[1] = registration[1].to_ascii_uppercase();
        write_digits(&mut bytes[2..8], region);
        for (slot, byte) in bytes[8..16].iter_mut().zip(body) {
            *slot = byte.to_ascii_uppercase();
        }
        bytes[16] = org_code_check(&bytes)?;
        bytes[17] = uscc_check(&bytes)?;
        let text = std::str::from_utf8(&bytes).ok()?;
        match SubjectId::parse(text) {
            Ok(Parsed { id, warning: None }) if id.kind == SubjectKind::Organisation => Some(id),
            _ => None,
        }
    }

    /// What kind of subject this identifier names.
    pub fn kind(&self) -> SubjectKind {
        self.kind
    }

    /// The normalised 18 characters.
    pub fn as_str(&self) -> &str {
        // The bytes are ASCII by construction; the fallback is unreachable.
        std::str::from_utf8(&self.bytes).unwrap_or("??????????????????")
    }

    /// The six-digit administrative division code: positions 1-6 of a person
    /// number (where the card was first issued), 3-8 of a USCC (where the
    /// organisation was registered).
    pub fn region_code(&self) -> &str {
        let text = self.as_str();
        let range = match self.kind {
            SubjectKind::Person => 0..6,
            SubjectKind::Organisation => 2..8,
        };
        text.get(range).unwrap_or("")
    }

    /// A person's birth date as (year, month, day); `None` for organisations.
    pub fn birth_date(&self) -> Option<(i16, i8, i8)> {
        match self.kind {
            SubjectKind::Person => birth_date(&self.bytes),
            SubjectKind::Organisation => None,
        }
    }

    /// The identifier as it is published where anyone may read it. An
    /// organisation's code is printed whole: company credit is public, and
    /// the code is how consumers look a company up. A person's number has
    /// its month and day of birth hidden (`1101051949****002X`), as courts'
    /// public notices of dishonest judgment defaulters print it: enough to
    /// tell two entries apart and for people to recognise their own, not
    /// the whole number that, with a name, opens accounts and contracts.
    pub fn public_form(&self) -> String {
        let text = self.as_str();
        match self.kind {
            SubjectKind::Organisation => text.to_owned(),
            SubjectKind::Person => {
                format!(
                    "{}****{}",
                    text.get(..10).unwrap_or(""),
                    text.get(14..).unwrap_or("")
                )
            }
        }
    }

    /// Whether a person's sequence number is odd (male, by the standard);
    /// `None` for organisations.
    pub fn is_male(&self) -> Option<bool> {
        match self.kind {
            // ASCII '0' is even, so a digit's byte has the digit's parity.
            SubjectKind::Person => Some(self.bytes[16] % 2 == 1),
            SubjectKind::Organisation => None,
        }
    }
}

/// Checks the length, upper-cases ASCII letters and keeps the original
/// characters so that errors can quote what was typed.
fn normalise(text: &str) -> Result<([char; LEN], [u8; LEN]), IdError> {
    let found = if text.is_ascii() {
        text.len()
    } else {
        text.chars().count()
    };
    if found != LEN {
        return Err(IdError::Length { found });
    }
    let mut chars = ['\0'; LEN];
    let mut bytes = [NON_ASCII; LEN];
    for (i, ch) in text.chars().enumerate().take(LEN) {
        chars[i] = ch;
        if ch.is_ascii() {
            bytes[i] = (ch as u8).to_ascii_uppercase();
        }
    }
    Ok((chars, bytes))
}

fn character_error(chars: &[char; LEN], index: usize, expected: &'static str) -> IdError {
    IdError::Character {
        position: index + 1,
        found: chars[index],
        expected,
    }
}

/// Seventeen digits starting 1-8: a person number, or a USCC that happens to
/// look like one.
fn parse_person_shaped(chars: &[char; LEN], bytes: [u8; LEN]) -> Result<Parsed, IdError> {
    let date = birth_date(&bytes);
    let expected = person_check(&bytes);
    if date.is_some() && expected == Some(bytes[17]) {
        return Ok(Parsed {
            id: SubjectId {
                bytes,
                kind: SubjectKind::Person,
            },
            warning: None,
        });
    }
    if is_full_uscc(&bytes) {
        return Ok(organisation_parsed(bytes, None));
    }
    if date.is_none() {
        let year = read_digits(&bytes[6..10]).and_then(|year| u16::try_from(year).ok());
        if let Some(year) = year.filter(|year| {
            !(BIRTH_YEAR_MIN..=BIRTH_YEAR_MAX).contains(&i16::try_from(*year).unwrap_or(i16::MAX))
        }) {
            return Err(IdError::BirthYear { year });
        }
        let text = chars[6..14].iter().collect();
        return Err(IdError::BirthDate { text });
    }
    let last = bytes[17];
    if !(last.is_ascii_digit() || last == b'X') {
        return Err(character_error(chars, 17, EXPECTED_PERSON_CHECK));
    }
    let expected = char::from(expected.unwrap_or(b'?'));
    Err(IdError::CheckCharacter {
        expected,
        found: chars[17].to_ascii_uppercase(),
    })
}

/// Anything that does not look like a person number: a USCC, possibly an
/// early pilot code with a wrong check character.
fn parse_uscc(chars: &[char; LEN], bytes: [u8; LEN]) -> Result<Parsed, IdError> {
    if let Some(index) = bytes.iter().position(|&b| uscc_value(b).is_none()) {
        return Err(character_error(chars, index, EXPECTED_USCC));
    }
    // No authority issues codes under another character (`0`, say): such a
    // code is refused even when its check character is right.
    if !AUTHORITY_CODES.contains(&bytes[0]) {
        return Err(character_error(chars, 0, EXPECTED_AUTHORITY));
    }
    let expected = uscc_check(&bytes).unwrap_or(b'?');
    if expected == bytes[17] {
        return Ok(organisation_parsed(bytes, None));
    }
    let expected = char::from(expected);
    let found = char::from(bytes[17]);
    let well_formed =
        AUTHORITY_CODES.contains(&bytes[0]) && org_code_check(&bytes) == Some(bytes[16]);
    if well_formed {
        let warning = IdWarning::PilotCheckCharacter { expected, found };
        return Ok(organisation_parsed(bytes, Some(warning)));
    }
    Err(IdError::CheckCharacter { expected, found })
}

fn organisation_parsed(bytes: [u8; LEN], warning: Option<IdWarning>) -> Parsed {
    Parsed {
        id: SubjectId {
            bytes,
            kind: SubjectKind::Organisation,
        },
        warning,
    }
}

/// A USCC whose own check character and embedded organisation code check
/// character are both right: strong enough evidence to overrule a shape that
/// suggests a person number.
fn is_full_uscc(bytes: &[u8; LEN]) -> bool {
    bytes.iter().all(|&b| uscc_value(b).is_some())
        && uscc_check(bytes) == Some(bytes[17])
        && org_code_check(bytes) == Some(bytes[16])
}

fn uscc_value(byte: u8) -> Option<u32> {
    let value = *USCC_VALUES.get(usize::from(byte))?;
    (value != NOT_USCC).then_some(u32::from(value))
}

/// The MOD 11-2 check character over the first 17 bytes; `None` if one of
/// them is not a digit.
fn person_check(bytes: &[u8; LEN]) -> Option<u8> {
    let mut sum = 0;
    for (byte, weight) in bytes.iter().zip(PERSON_WEIGHTS) {
        if !byte.is_ascii_digit() {
            return None;
        }
        sum += u32::from(byte - b'0') * weight;
    }
    PERSON_CHECK.get((sum % 11) as usize).copied()
}

/// The mod 31 check character over the first 17 bytes; `None` if one of them
/// is not a USCC character.
fn uscc_check(bytes: &[u8; LEN]) -> Option<u8> {
    let mut sum = 0;
    for (&byte, weight) in bytes.iter().zip(USCC_WEIGHTS) {
        sum += uscc_value(byte)? * weight;
    }
    USCC_ALPHABET.get(((31 - sum % 31) % 31) as usize).copied()
}

/// The GB 11714 check character of the organisation code in positions 9-17,
/// computed over positions 9-16. Letters count 10-35 (A-Z), not their USCC
/// values.
fn org_code_check(bytes: &[u8; LEN]) -> Option<u8> {
    let mut sum = 0;
    for (&byte, weight) in bytes[8..16].iter().zip(ORG_CODE_WEIGHTS) {
        let value = match byte {
            b'0'..=b'9' => u32::from(byte - b'0'),
            b'A'..=b'Z' => u32::from(byte - b'A') + 10,
            _ => return None,
        };
        sum += value * weight;
    }
    match 11 - sum % 11 {
        10 => Some(b'X'),
        11 => Some(b'0'),
        digit => Some(b'0' + digit as u8),
    }
}

/// The birth date in positions 7-14, if it is all digits, exists, and lies
/// in the accepted years.
fn birth_date(bytes: &[u8; LEN]) -> Option<(i16, i8, i8)> {
    let year = read_digits(&bytes[6..10])?;
    let month = read_digits(&bytes[10..12])?;
    let day = read_digits(&bytes[12..14])?;
    let year = i16::try_from(year).ok()?;
    if !(BIRTH_YEAR_MIN..=BIRTH_YEAR_MAX).contains(&year) {
        return None;
    }
    let (month, day) = (i8::try_from(month).ok()?, i8::try_from(day).ok()?);
    date_exists(year, month, day).then_some((year, month, day))
}

fn date_exists(year: i16, month: i8, day: i8) -> bool {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_max = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days_max).contains(&day)
}

fn read_digits(bytes: &[u8]) -> Option<u32> {
    let mut value = 0u32;
    for &byte in bytes {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(byte - b'0');
    }
    Some(value)
}

/// Writes `value` as zero-padded decimal digits filling `slot`.
fn write_digits(slot: &mut [u8], mut value: u32) {
    for byte in slot.iter_mut().rev() {
        *byte = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubjectId({})", self.as_str())
    }
}

impl Serialize for SubjectId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Parses like [`SubjectId::parse`]: invalid identifiers are refused, and a
/// pilot code's warning is dropped (callers that must surface it parse
/// themselves).
impl<'de> Deserialize<'de> for SubjectId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(SubjectIdVisitor)
    }
}

struct SubjectIdVisitor;

impl serde::de::Visitor<'_> for SubjectIdVisitor {
    type Value = SubjectId;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an 18-character Resident Identity Card number or Unified Social Credit Code")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SubjectId, E> {
        SubjectId::parse(text)
            .map(|parsed| parsed.id)
            .map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{expect, Expect};
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_person_is_published_without_month_and_day_of_birth() {
        let person = SubjectId::parse("11010519491231002x").unwrap().id;
        assert_eq!(person.public_form(), "1101051949****002X");
        let company = SubjectId::parse("91110000600037341L").unwrap().id;
        assert_eq!(company.public_form(), "91110000600037341L");
    }

    fn check_error(text: &str, expected: Expect) {
        match SubjectId::parse(text) {
            Ok(parsed) => panic!("`{text}` was accepted as {parsed:?}"),
            Err(error) => expected.assert_eq(&format!("{error:?}\n{error}")),
        }
    }

    fn parse_ok(text: &str) -> Parsed {
        match SubjectId::parse(text) {
            Ok(parsed) => parsed,
            Err(error) => panic!("`{text}` was refused: {error}"),
        }
    }

    #[test]
    fn published_examples_parse_with_their_kind() {
        let person = parse_ok("11010519491231002X");
        assert_eq!(person.warning, None);
        assert_eq!(person.id.kind(), SubjectKind::Person);
        assert_eq!(person.id.region_code(), "110105");
        assert_eq!(person.id.birth_date(), Some((1949, 12, 31)));
        assert_eq!(person.id.is_male(), Some(false));

        let org = parse_ok("91110000600037341L");
        assert_eq!(org.warning, None);
        assert_eq!(org.id.kind(), SubjectKind::Organisation);
        assert_eq!(org.id.region_code(), "110000");
        assert_eq!(org.id.birth_date(), None);
        assert_eq!(org.id.is_male(), None);
    }

    #[test]
    fn lower_case_is_normalised() {
        let person = parse_ok("11010519491231002x");
        assert_eq!(person.id.as_str(), "11010519491231002X");
        let org = parse_ok("91110000600037341l");
        assert_eq!(org.id.as_str(), "91110000600037341L");
        assert_eq!(org.id, parse_ok("91110000600037341L").id);
    }

    #[test]
    fn pilot_code_is_accepted_with_a_warning() {
        let parsed = parse_ok("91350100M0001TGQXM");
        assert_eq!(parsed.id.kind(), SubjectKind::Organisation);
        let warning = parsed.warning.expect("a pilot code must carry a warning");
        expect![[r#"
            PilotCheckCharacter { expected: '1', found: 'M' }
            check character is `M`, expected `1`: accepted as an early pilot Unified Social Credit Code"#]]
        .assert_eq(&format!("{warning:?}\n{warning}"));
    }

    #[test]
    fn wrong_length_is_reported_with_the_count() {
        check_error(
            "110105194912310",
            expect![[r#"
                Length { found: 15 }
                identifier has 15 characters, expected 18"#]],
        );
        check_error(
            " 11010519491231002X",
            expect![[r#"
                Length { found: 19 }
                identifier has 19 characters, expected 18"#]],
        );
        check_error(
            "",
            expect![[r#"
                Length { found: 0 }
                identifier has 0 characters, expected 18"#]],
        );
        // Characters, not bytes: eighteen CJK characters are eighteen.
        check_error(
            "一二三四五六七八九十一二三四五六七",
            expect![[r#"
                Length { found: 17 }
                identifier has 17 characters, expected 18"#]],
        );
    }

    #[test]
    fn bad_characters_are_named_with_their_position() {
        // A letter typed into a person number.
        check_error(
            "1101051949123A002X",
            expect![[r#"
                Character { position: 14, found: 'A', expected: "a digit" }
                character `A` at position 14 is not allowed here (a digit)"#]],
        );
        // A full-width digit, a common slip with Chinese input methods.
        check_error(
            "110105194912310０2X",
            expect![[r#"
                Character { position: 16, found: '０', expected: "a digit" }
                character `０` at position 16 is not allowed here (a digit); `０` is the full-width form of `0`"#]],
        );
        // A whole number typed full-width reads as neither kind: the first
        // character is named, with what it stands for.
        check_error(
            "１１０１０５１９４９１２３１００２Ｘ",
            expect![[r#"
                Character { position: 1, found: '１', expected: "a USCC character (0-9 and A-Z without I, O, S, V, Z)" }
                character `１` at position 1 is not allowed here (a USCC character (0-9 and A-Z without I, O, S, V, Z)); `１` is the full-width form of `1`"#]],
        );
        check_error(
            "11010519491231002Y",
            expect![[r#"
                Character { position: 18, found: 'Y', expected: "a digit or X" }
                character `Y` at position 18 is not allowed here (a digit or X)"#]],
        );
        // Letters outside the USCC alphabet.
        check_error(
            "91110000600O37341L",
            expect![[r#"
                Character { position: 12, found: 'O', expected: "a USCC character (0-9 and A-Z without I, O, S, V, Z)" }
                character `O` at position 12 is not allowed here (a USCC character (0-9 and A-Z without I, O, S, V, Z))"#]],
        );
        // A code no registration authority issues, whatever its check
        // character says.
        check_error(
            "000000000000000000",
            expect![[r#"
                Character { position: 1, found: '0', expected: "a registration authority code of GB 32100: 1-9, A, N or Y" }
                character `0` at position 1 is not allowed here (a registration authority code of GB 32100: 1-9, A, N or Y)"#]],
        );
        check_error(
            "91110000600037341i",
            expect![[r#"
                Character { position: 18, found: 'i', expected: "a USCC character (0-9 and A-Z without I, O, S, V, Z)" }
                character `i` at position 18 is not allowed here (a USCC character (0-9 and A-Z without I, O, S, V, Z))"#]],
        );
    }

    #[test]
    fn impossible_birth_dates_are_refused() {
        check_error(
            "110105194902300021",
            expect![[r#"
                BirthDate { text: "19490230" }
                birth date 19490230 in positions 7-14 does not exist"#]],
        );
        check_error(
            "110105189912310021",
            expect![[r#"
                BirthYear { year: 1899 }
                birth year 1899 in positions 7-10 is outside 1900-2099, the years a number may carry"#]],
        );
        // 1900 was not a leap year; 2000 was.
        assert!(SubjectId::parse("110105190002290021").is_err());
        assert!(SubjectId::person(110105, 2000, 2, 29, 2).is_some());
        assert!(SubjectId::person(110105, 1900, 2, 29, 2).is_none());
    }

    #[test]
    fn wrong_check_characters_are_refused() {
        check_error(
            "110105194912310021",
            expect![[r#"
                CheckCharacter { expected: 'X', found: '1' }
                check character at position 18 is `1`, expected `X`"#]],
        );
        // Not a well-formed pilot code: position 17 is not the organisation
        // code's check character.
        check_error(
            "91110000600037342L",
            expect![[r#"
                CheckCharacter { expected: 'P', found: 'L' }
                check character at position 18 is `L`, expected `P`"#]],
        );
    }

    #[test]
    fn a_uscc_that_looks_like_a_person_number_stays_an_organisation() {
        // Yanqing (110119) with an all-digit organisation code whose first six
        // digits read as 1980-04-12: person-shaped, but a valid USCC.
        let id = (0..100u32)
            .filter_map(|n| {
                let body = format!("800412{n:02}");
                let body: [u8; 8] = body.as_bytes().try_into().ok()?;
                SubjectId::organisation(*b"12", 110119, body)
            })
            .find(|id| id.as_str().bytes().all(|b| b.is_ascii_digit()))
            .expect("some body gives an all-digit code");
        assert_eq!(&id.as_str()[6..14], "19800412");
        let parsed = parse_ok(id.as_str());
        assert_eq!(parsed.id.kind(), SubjectKind::Organisation);
        assert_eq!(parsed.warning, None);
    }

    #[test]
    fn constructors_refuse_out_of_range_parts() {
        assert!(SubjectId::person(99_999, 1990, 1, 1, 1).is_none());
        assert!(SubjectId::person(910_105, 1990, 1, 1, 1).is_none());
        assert!(SubjectId::person(110105, 1990, 13, 1, 1).is_none());
        assert!(SubjectId::person(110105, 1990, 1, 1, 1000).is_none());
        assert!(SubjectId::organisation(*b"91", 1_000_000, *b"MA01ABCD").is_none());
        assert!(SubjectId::organisation(*b"91", 110105, *b"MA01ABCI").is_none());
        let org = SubjectId::organisation(*b"91", 350100, *b"M0001TGQ");
        // The pilot code's body with both check characters recomputed.
        assert_eq!(
            org.map(|id| id.to_string()).as_deref(),
            Some("91350100M0001TGQX1")
        );
    }

    #[test]
    fn deserializing_parses_and_refuses_invalid_text() {
        use serde::de::value::{Error, StrDeserializer};
        let id = parse_ok("11010519491231002X").id;
        let back = SubjectId::deserialize(StrDeserializer::<Error>::new("11010519491231002x"));
        assert_eq!(back, Ok(id));
        let bad = SubjectId::deserialize(StrDeserializer::<Error>::new("110105194912310021"));
        let message = bad.map_err(|error| error.to_string());
        assert_eq!(
            message,
            Err("check character at position 18 is `1`, expected `X`".to_string())
        );
    }

    fn valid_person() -> impl Strategy<Value = SubjectId> {
        (
            100_000u32..=899_999,
            1900i16..=2099,
            1i8..=12,
            1i8..=31,
            0u16..=999,
        )
            .prop_filter_map("date must exist", |(region, year, month, day, sequence)| {
                SubjectId::person(region, year, month, day, sequence)
            })
    }

    const REGISTRATIONS: [&[u8; 2]; 10] = [
        b"91", b"92", b"93", b"11", b"12", b"13", b"51", b"52", b"53", b"Y1",
    ];

    fn valid_org() -> impl Strategy<Value = SubjectId> {
        let body_char = proptest::sample::select(USCC_ALPHABET.to_vec());
        (
            proptest::sample::select(REGISTRATIONS.to_vec()),
            100_000u32..=899_999,
            proptest::array::uniform8(body_char),
        )
            .prop_filter_map(
                "must not read as a person",
                |(registration, region, body)| SubjectId::organisation(*registration, region, body),
            )
    }

    /// A replacement character: anything an operator might type.
    fn replacement() -> impl Strategy<Value = char> {
        prop_oneof![
            proptest::char::range('0', '9'),
            proptest::char::range('A', 'Z'),
            proptest::char::range('a', 'z'),
            proptest::sample::select(vec![' ', '-', '０', 'Ｘ', 'é', '一', '\0']),
        ]
    }

    /// Whether typing `ch` at `index` changes the identifier (lower case
    /// letters are the same as upper case ones).
    fn changes(id: &SubjectId, index: usize, ch: char) -> bool {
        id.as_str().chars().nth(index) != Some(ch.to_ascii_uppercase())
    }

    fn replace(id: &SubjectId, index: usize, ch: char) -> String {
        id.as_str()
            .chars()
            .enumerate()
            .map(|(i, old)| if i == index { ch } else { old })
            .collect()
    }

    proptest! {
        #[test]
        fn valid_persons_parse_back_to_themselves(id in valid_person()) {
            let parsed = SubjectId::parse(id.as_str());
            prop_assert_eq!(parsed, Ok(Parsed { id, warning: None }));
            prop_assert_eq!(id.kind(), SubjectKind::Person);
        }

        #[test]
        fn valid_orgs_parse_back_to_themselves(id in valid_org()) {
            let parsed = SubjectId::parse(id.as_str());
            prop_assert_eq!(parsed, Ok(Parsed { id, warning: None }));
            prop_assert_eq!(id.kind(), SubjectKind::Organisation);
        }

        /// MOD 11-2 catches every single wrong character, so a mistyped
        /// person number is never a person. It can only be accepted when it
        /// is a fully valid organisation code, or, if the province digit was
        /// replaced, a well-formed pilot code (flagged).
        #[test]
        fn a_mistyped_person_number_is_never_a_person(
            id in valid_person(), index in 0usize..18, ch in replacement()
        ) {
            prop_assume!(changes(&id, index, ch));
            let text = replace(&id, index, ch);
            if let Ok(parsed) = SubjectId::parse(&text) {
                prop_assert_eq!(parsed.id.kind(), SubjectKind::Organisation, "{}", text);
                prop_assert!(parsed.warning.is_none() || index == 0, "{} {:?}", text, parsed);
            }
        }

        /// The mod 31 check catches every single wrong character, so a
        /// mistyped organisation code is refused or flagged, unless it is a
        /// valid person number.
        #[test]
        fn a_mistyped_org_code_is_refused_or_flagged(
            id in valid_org(), index in 0usize..18, ch in replacement()
        ) {
            prop_assume!(changes(&id, index, ch));
            let text = replace(&id, index, ch);
            if let Ok(parsed) = SubjectId::parse(&text) {
                let silent_org = parsed.warning.is_none()
                    && parsed.id.kind() == SubjectKind::Organisation;
                prop_assert!(!silent_org, "{} {:?}", text, parsed);
            }
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in any::<String>()) {
            let _ = SubjectId::parse(&text);
        }

        /// Eighteen characters drawn near the valid alphabets reach every
        /// branch; whatever is accepted is normalised and parses to itself.
        #[test]
        fn accepted_text_is_normalised_and_stable(
            chars in proptest::collection::vec(replacement(), 18)
        ) {
            let text: String = chars.into_iter().collect();
            if let Ok(parsed) = SubjectId::parse(&text) {
                let normal = parsed.id.as_str();
                prop_assert_eq!(normal, text.to_ascii_uppercase());
                prop_assert_eq!(SubjectId::parse(normal), Ok(parsed.clone()));
                prop_assert_eq!(parsed.id.region_code().len(), 6);
            }
        }
    }
}
