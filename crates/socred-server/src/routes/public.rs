//! What anyone may see without a token: the rulebook, a company's public
//! credit information, and the public lists. Persons' files are never
//! disclosed here; a person appears only as an entry of a list the rulebook
//! publishes, and only while the entry is in force, and a person's
//! identifier only in its public form, without the month and day of birth
//! (`SubjectId::public_form`): on a list, in a company's records (a legal
//! representative) and as the subject an entry reached a company through.
//! The lists' page cursors are sealed (`crate::cursor`) so that paging
//! cannot reveal the digits the entries hide.
//!
//! Public lookups are disclosures, not reads of a file: they show only what
//! is published to everyone, so they are not written to the audit log (a
//! company's log would otherwise fill with every consumer's lookup).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use socred_core::file::{Detail, EntryView, RecordView};
use socred_core::record::Value;
use socred_core::rulebook::{ListKind, Schedule};
use socred_core::state::Span;
use socred_core::{Day, SubjectId, SubjectKind};

use crate::auth::Caller;
use crate::body::{Params, Segment};
use crate::error::ApiError;
use crate::routes::{cut_page, page_limit, parse_subject};
use crate::state::{AppState, Current};

#[derive(Serialize)]
pub struct RulebookView {
    /// `id@version`.
    label: String,
    /// The rulebook file, TOML.
    text: String,
}

/// The rulebook in force, as its TOML text.
pub async fn rulebook(State(state): State<AppState>, _caller: Caller) -> Json<RulebookView> {
    let current = state.current();
    Json(RulebookView {
        label: current.label.clone(),
        text: current.text.to_string(),
    })
}

#[derive(Serialize)]
pub struct ModelGrade {
    model: std::sync::Arc<str>,
    grade: Option<std::sync::Arc<str>>,
}

#[derive(Serialize)]
pub struct CompanyView {
    subject: SubjectId,
    as_of: Day,
    rulebook: String,
    /// The grade of the main scoring model (None when not graded).
    grade: Option<std::sync::Arc<str>>,
    /// The grade under every model that grades organisations.
    grades: Vec<ModelGrade>,
    /// Entries of public lists in force today.
    list_entries: Vec<PublicEntry>,
    /// Records inside their publicity window.
    records: Vec<RecordView>,
}

/// A company's public credit information.
pub async fn company(
    State(state): State<AppState>,
    _caller: Caller,
    uscc: Segment,
) -> Result<Json<CompanyView>, ApiError> {
    let subject = parse_subject(uscc.text()?)?;
    if subject.kind() != SubjectKind::Organisation {
        return Err(ApiError::bad_request(
            "not_an_organisation",
            format!("`{subject}` is a person's identifier; only organisations' credit information is public"),
        ));
    }
    let Some(subject_state) = state.store().state(subject).await? else {
        return Err(ApiError::not_found(
            "unknown_subject",
            format!("the registry holds nothing about `{subject}`"),
        ));
    };
    // Read with the rulebook that folded it, which the page then names.
    let current = state.current_for(&subject_state).await?;
    let today = state.today();
    let standing = current.engine.evaluate(&subject_state, today);
    let file = current.engine.credit_file(&standing, Detail::Full);
    let list_entries = file
        .list_entries
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.public)
        .map(published_entry)
        .collect();
    let records = file
        .records
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.public)
        .map(published_record)
        .collect();
    let grades = file
        .models
        .iter()
        .map(|m| ModelGrade {
            model: m.model.into(),
            grade: m.grade.clone(),
        })
        .collect();
    Ok(Json(CompanyView {
        subject,
        as_of: today,
        rulebook: file.rulebook,
        grade: file.grade,
        grades,
        list_entries,
        records,
    }))
}

/// A public record with every person's identifier in its texts (a legal
/// representative among its fields, a number quoted in its document, its
/// statement or even its id) in its public form. Any run of 18 characters
/// that is a valid person's number is taken for one, whatever the field's
/// declared type and whatever stands around it.
fn published_record(mut record: RecordView) -> RecordView {
    let masked: Vec<(std::sync::Arc<str>, String)> = record
        .fields
        .iter()
        .filter_map(|(name, value)| {
            let Value::Text(text) = value else {
                return None;
            };
            mask_persons(text).map(|masked| (name.clone(), masked))
        })
        .collect();
    for (name, text) in masked {
        record.fields.insert(name, Value::Text(text.into()));
    }
    for text in [&mut record.document, &mut record.statement]
        .into_iter()
        .flatten()
    {
        if let Some(masked) = mask_persons(text) {
            *text = masked.into();
        }
    }
    if let Some(masked) = mask_persons(&record.key.id) {
        record.key.id = masked.into();
    }
    record
}

/// `text` with every person's identifier in it in its public form, or
/// None when it holds none.
///
/// A provider writes a number as it comes: glued to a word
/// (`ID110105…`), in full-width digits, in groups (`110105-19491231-002X`,
/// `(110105)19491231(002X)`), or as a first-generation number of 15 digits
/// (region, `YYMMDD`, sequence, no check character). So every run of
/// digits (either width, with up to [`SEPARATORS_MAX`] characters that are
/// neither letters nor digits between two of them) is searched: any 18 of them
/// in a row that are a valid person's number are masked, and then any 15
/// in a row, outside those and outside an organisation's code, that are a
/// first-generation number (a region starting 1-8 and a real date in the
/// 1900s). A 15-digit run can also be something else (an old business
/// registration number shares the shape); masking such a run in part is
/// the price of never publishing a person's number.
fn mask_persons(text: &str) -> Option<String> {
    let mut spans: Vec<(usize, usize, String)> = Vec::new();
    let mut run: Vec<(u8, usize, usize)> = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if let Some(digit) = id_char(c) {
            run.push((digit, at, at + c.len_utf8()));
            // Separators continue the run only between two digits.
            let mut ahead = chars.clone();
            let mut between = 0;
            while ahead
                .peek()
                .is_some_and(|&(_, c)| id_separator(c) && between < SEPARATORS_MAX)
            {
                ahead.next();
                between += 1;
            }
            if between > 0 && ahead.peek().is_some_and(|&(_, c)| id_char(c).is_some()) {
                chars = ahead;
            }
            continue;
        }
        mask_run(&run, &mut spans);
        run.clear();
    }
    mask_run(&run, &mut spans);
    if spans.is_empty() {
        return None;
    }
    spans.sort_by_key(|&(start, _, _)| start);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end, public) in spans {
        // Spans never overlap (`mask_run` takes each digit once); one
        // that did would be passed over rather than cut the text.
        if let Some(between) = text.get(copied..start) {
            out.push_str(between);
            out.push_str(&public);
            copied = end;
        }
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// The ASCII character a character of a written identifier stands for:
/// digits and the check character `X` in either width.
fn id_char(c: char) -> Option<u8> {
    match c {
        '0'..='9' => u8::try_from(c).ok(),
        '\u{FF10}'..='\u{FF19}' => u8::try_from(u32::from(c) - 0xFF10 + u32::from(b'0')).ok(),
        'X' | 'x' | '\u{FF38}' | '\u{FF58}' => Some(b'X'),
        _ => None,
    }
}

/// A character that may stand between the digit groups of a written
/// identifier: anything that is neither a letter nor a digit (spaces of
/// any width, line breaks and tabs, hyphens, dots, slashes, underscores,
/// brackets, an invisible zero-width space). A letter ends the run.
fn id_separator(c: char) -> bool {
    !c.is_alphanumeric()
}

/// Separators in a row that still join two digit groups (`110105  1949`,
/// `(110105)1949`, a CRLF).
const SEPARATORS_MAX: usize = 3;

/// Adds to `spans` (byte range in the text, public form) the persons'
/// numbers in one run of identifier characters.
fn mask_run(run: &[(u8, usize, usize)], spans: &mut Vec<(usize, usize, String)>) {
    const LEN: usize = 18;
    const OLD_LEN: usize = 15;
    let digits: Vec<u8> = run.iter().map(|&(digit, _, _)| digit).collect();
    let span = |from: usize, len: usize| (run[from].1, run[from + len - 1].2);
    // Runs of 18 first, left to right; an organisation's code is kept
    // whole and out of reach of the search for 15.
    let mut taken = vec![false; digits.len()];
    let mut at = 0;
    while at + LEN <= digits.len() {
        let window = &digits[at..at + LEN];
        let parsed = window[..LEN - 1]
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| std::str::from_utf8(window).ok())
            .flatten()
            .and_then(|id| SubjectId::parse(id).ok());
        match parsed {
            Some(parsed) => {
                if parsed.id.kind() == SubjectKind::Person {
                    let (start, end) = span(at, LEN);
                    spans.push((start, end, parsed.id.public_form()));
                }
                taken[at..at + LEN].fill(true);
                at += LEN;
            }
            None => at += 1,
        }
    }
    let mut at = 0;
    while at + OLD_LEN <= digits.len() {
        let window = &digits[at..at + OLD_LEN];
        let free = !taken[at..at + OLD_LEN].contains(&true);
        match free.then(|| first_generation(window)).flatten() {
            Some(public) => {
                let (start, end) = span(at, OLD_LEN);
                spans.push((start, end, public));
                at += OLD_LEN;
            }
            None => at += 1,
        }
    }
}

/// The public form of a first-generation number (15 digits: region,
/// `YYMMDD` in the 1900s, sequence), its month and day hidden as a
/// second-generation number's are; None when the digits are not one. The
/// number is valid when the 18-digit number it became (the year's `19`
/// added, and a check character) is.
fn first_generation(digits: &[u8]) -> Option<String> {
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let digits = std::str::from_utf8(digits).ok()?;
    let (region, rest) = digits.split_at(6);
    let valid = "0123456789X".chars().any(|check| {
        SubjectId::parse(&format!("{region}19{rest}{check}"))
            .is_ok_and(|parsed| parsed.id.kind() == SubjectKind::Person)
    });
    valid.then(|| format!("{}****{}", &digits[..8], &digits[12..]))
}

/// A public list entry, with the subject it reached this one through (if
/// any) in its public form, and any person's number in the id of the
/// record behind it masked.
#[derive(Serialize)]
pub struct PublicEntry {
    #[serde(flatten)]
    entry: EntryView,
    #[serde(skip_serializing_if = "Option::is_none")]
    via: Option<String>,
}

fn published_entry(mut entry: EntryView) -> PublicEntry {
    let via = entry.via.take().map(|via| via.public_form());
    // The grade is public, the score that earned it is not: a score is part
    // of the file, which only its subject reads.
    entry.grade_score = None;
    // The record behind the entry is named by its key, as in `records`.
    if let Some(record) = &mut entry.record {
        if let Some(masked) = mask_persons(&record.id) {
            record.id = masked.into();
        }
    }
    PublicEntry { entry, via }
}

#[derive(Serialize)]
pub struct ListSummary {
    id: std::sync::Arc<str>,
    title: String,
    kind: ListKind,
    legal_basis: String,
    /// For a list entered by grade: when its editions come out.
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<Schedule>,
    /// For such a list: the publication day of its last edition (absent
    /// until the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    published: Option<Day>,
}

#[derive(Serialize)]
pub struct ListsView {
    lists: Vec<ListSummary>,
}

/// The lists the rulebook publishes.
pub async fn lists(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<ListsView>, ApiError> {
    let current = state.current();
    let mut lists = Vec::new();
    for list in current.rulebook().lists.iter().filter(|list| list.public) {
        let schedule = list.edition_schedule();
        let published = match schedule {
            Some(_) => state.store().edition(&list.id).await?.map(|e| e.day),
            None => None,
        };
        lists.push(ListSummary {
            id: list.id.into(),
            title: list.title.clone(),
            kind: list.kind,
            legal_basis: list.legal_basis.clone(),
            schedule,
            published,
        });
    }
    Ok(Json(ListsView { lists }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    after: Option<String>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub struct MemberView {
    /// The identifier's public form: a person's without the month and day
    /// of birth.
    subject: String,
    kind: SubjectKind,
    since: Day,
    /// The day the entry ends (absent: open-ended).
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<Day>,
}

#[derive(Serialize)]
pub struct MembersView {
    list: std::sync::Arc<str>,
    title: String,
    as_of: Day,
    /// For a list entered by grade: the publication day of the edition
    /// whose subjects the page reads (absent before the first edition).
    #[serde(skip_serializing_if = "Option::is_none")]
    published: Option<Day>,
    entries: Vec<MemberView>,
    /// Pass as `after` for the next page; absent on the last page. Opaque,
    /// and good for this list at any server of the registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<String>,
}

/// The entries of a public list in force today, in identifier order.
pub async fn list_members(
    State(state): State<AppState>,
    _caller: Caller,
    id: Segment,
    query: Params<PageQuery>,
) -> Result<Json<MembersView>, ApiError> {
    let id = id.text()?;
    let query = query.get()?;
    let current = state.current();
    let Some(list) = current
        .rulebook()
        .lists
        .iter()
        .find(|list| *list.id == *id && list.public)
    else {
        return Err(ApiError::not_found(
            "unknown_list",
            format!("there is no public list `{id}`; see /v1/public/lists"),
        ));
    };
    let after = query
        .after
        .as_deref()
        .map(|cursor| {
            state.cursors().open(&list.id, cursor).map_err(|_| {
                ApiError::bad_request(
                    "invalid_cursor",
                    format!(
                        "`after` is not a cursor the registry gave out for list `{id}` \
                         (cursors are the `next_after` of a page); start again without \
                         `after`"
                    ),
                )
            })
        })
        .transpose()?;
    let limit = page_limit(query.limit);
    let today = state.today();
    // One more than the page asks for tells whether a next page holds
    // anything: a full last page then gives no cursor to an empty one.
    let (published, members, last) = if list.edition_schedule().is_some() {
        let page = state
            .store()
            .edition_members(&list.id, after, limit + 1)
            .await?;
        let (published, candidates) = match page {
            Some(page) => (Some(page.edition.day), page.members),
            None => (None, Vec::new()),
        };
        let (candidates, more) = cut_page(candidates, limit);
        let subjects: Vec<SubjectId> = candidates.iter().map(|m| m.subject).collect();
        let members = named_today(&state, &current, &subjects, &list.id, today).await?;
        let last = subjects.last().filter(|_| more);
        (published, members, last.copied())
    } else {
        let members = state
            .store()
            .list_members(&list.id, today, after, limit + 1)
            .await?;
        let (members, more) = cut_page(members, limit);
        let last = members.last().filter(|_| more).map(|(last, _)| *last);
        (None, members, last)
    };
    let next_after = match last {
        Some(last) => {
            let cursor = state.cursors().seal(&list.id, last);
            Some(cursor.map_err(|error| ApiError::internal("sealing a page cursor", &error))?)
        }
        None => None,
    };
    let entries = members
        .into_iter()
        .map(|(subject, span)| MemberView {
            subject: subject.public_form(),
            kind: subject.kind(),
            since: span.start,
            until: (span.end != Day::MAX).then_some(span.end),
        })
        .collect();
    Ok(Json(MembersView {
        list: list.id.into(),
        title: list.title.clone(),
        as_of: today,
        published,
        entries,
        next_after,
    }))
}

/// Those of `subjects` whose file, read as of today, has an entry on
/// `list` in force `today`, each with the span of that entry
/// (`crate::publication`: an edition holds the subjects that a scheduled
/// list may name until the next).
async fn named_today(
    state: &AppState,
    current: &Current,
    subjects: &[SubjectId],
    list: &socred_core::Name,
    today: Day,
) -> Result<Vec<(SubjectId, Span)>, ApiError> {
    if !current.engine.rulebook.lists.iter().any(|l| l.id == *list) {
        return Ok(Vec::new());
    }
    let files = state.store().states_of(subjects).await?;
    Ok(subjects
        .iter()
        .zip(files)
        .filter_map(|(&subject, file)| {
            let file = file?;
            // Read with the rulebook that folded it (an upload's
            // recomputation may not have reached it yet); one folded with
            // a rulebook this server has not taken yet is left off for
            // the seconds until it has.
            let folded_with = state.folded_with(&file)?;
            let engine = &folded_with.engine;
            let index = engine.rulebook.lists.iter().position(|l| l.id == *list)?;
            let standing = engine.evaluate(&file, today);
            let entry = standing.entries.iter().find(|e| e.list == index as u32)?;
            Some((subject, entry.span))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::mask_persons;

    #[test]
    fn persons_numbers_are_masked_however_they_are_written() {
        let cases = [
            ("11010519491231002X", Some("1101051949****002X")),
            ("11010519491231002x", Some("1101051949****002X")),
            ("11010519491231002X ", Some("1101051949****002X ")),
            (
                "fine for 11010519491231002X, 310101198507141234.",
                Some("fine for 1101051949****002X, 3101011985****1234."),
            ),
            ("案件11010519491231002X号", Some("案件1101051949****002X号")),
            // Glued to words, in full width, in groups.
            ("A11010519491231002X", Some("A1101051949****002X")),
            ("ID11010519491231002Xabc", Some("ID1101051949****002Xabc")),
            (
                "１１０１０５１９４９１２３１００２Ｘ",
                Some("1101051949****002X"),
            ),
            ("110105-19491231-002X", Some("1101051949****002X")),
            ("110105 1949 1231 002X.", Some("1101051949****002X.")),
            ("110105.19491231.002X", Some("1101051949****002X")),
            ("110105/19491231/002X", Some("1101051949****002X")),
            ("110105_19491231_002X", Some("1101051949****002X")),
            ("110105\r\n19491231\t002X", Some("1101051949****002X")),
            ("110105  19491231  002X", Some("1101051949****002X")),
            ("(110105)19491231(002X)", Some("(1101051949****002X)")),
            ("1101051949\u{200b}1231002X", Some("1101051949****002X")),
            ("110105.491231.002", Some("11010549****002")),
            ("2026-11010519491231002X", Some("2026-1101051949****002X")),
            // Inside a longer run of digits.
            ("11010519491231002X2026", Some("1101051949****002X2026")),
            // First generation: 15 digits, no check character.
            ("old card 110105491231002", Some("old card 11010549****002")),
            // Not a valid number, or an organisation's code.
            ("110105194912310021", None),
            ("110105 19491231 0021", None),
            ("110105 -- 19491231002X", None),
            ("91110000600037341L", None),
            // An organisation's code of digits alone, with a first-
            // generation number's shape inside (110105 850101 043).
            ("code 911101058501010438.", None),
            ("penalty 42", None),
            ("", None),
        ];
        for (text, masked) in cases {
            assert_eq!(mask_persons(text).as_deref(), masked, "{text}");
        }
    }
}
