//! Lists published on a schedule: a list entered by grade (the weekly red
//! list of exemplary residents) is decided on its publication days, from
//! each subject's grade on that day, so the store cannot keep its entries
//! up to date as records arrive, as it does for lists entered by records.
//! The registry publishes an *edition* of each such public list instead:
//! it reads every subject's file as of the last publication day and keeps,
//! in the store, the subjects the list names or leaves off only because an
//! excluding list holds them (`excluded_by`). It draws the edition again
//! each day until the next publication day, so that a late record that
//! raises a grade on the publication day shows by the next day. The
//! public page then shows those of them that the list names *today*, each
//! file read as of today: a subject black-listed after the publication
//! day drops off at once, and is on again from the day that entry ends,
//! as its credit file and every decision say.
//!
//! A drawing again reads only the edition's subjects and those a write
//! changed since the drawing before began (`Store::subjects_changed`,
//! less a margin, `Limits::redraw_margin_ms`): a subject's standing on a
//! past day moves only when its file does. The first drawing of a
//! publication day, or under another rulebook, reads every subject.
//!
//! The server looks every minute whether an edition is due: none yet, a
//! publication day has passed since the last, it was drawn before today,
//! or the rulebook in force is not the one it was drawn under. Every
//! server of a store looks; one draws, under a lease the store keeps
//! (`Store::lease`, renewed each minute of a drawing, given up at its end;
//! a server that stops mid-drawing holds the others off five minutes),
//! and the store publishes each drawing once whatever happens
//! (`Store::publish_edition`). Each subject named gets an audit entry,
//! which its access log shows, when it enters the publication day's
//! edition (not again at each day's drawing; a subject kept only as left
//! off is told when a later drawing names it), and each drawing one more
//! that counts them. An edition of a list that the rulebook in force no
//! longer publishes (an upload dropped it, or made it private) is replaced
//! by an empty one, so that the store keeps no subject for it.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;
use socred_core::{Day, Name, SubjectId};
use socred_store::{AuditDraft, Drawing, EditionMember, StoreError};

use crate::state::{AppState, Current};

/// Subjects read per page while drawing an edition.
const PAGE: usize = 1000;
/// The lease under which one server of a store draws the editions due
/// (`Store::lease`); the others leave them to it.
const LEASE: &str = "publication";
/// How long the lease holds without being renewed: a server that stopped
/// mid-drawing holds the others off this long.
const LEASE_FOR_MS: i64 = 5 * 60 * 1000;
/// How often a drawing renews its lease.
const RENEW_EVERY_MS: i64 = 60 * 1000;
/// How often a server looks whether an edition is due.
const EVERY: Duration = Duration::from_secs(60);

/// One edition published, or withdrawn.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Publication {
    pub list: String,
    /// The publication day it is for.
    pub day: Day,
    /// The rulebook it was drawn under.
    pub rulebook: String,
    /// Subjects the list names on the publication day.
    pub named: u64,
    /// Subjects kept in the edition though the list leaves them off on
    /// the publication day (an excluding list holds them), for the days
    /// after that entry ends.
    pub left_off: u64,
    /// Subjects whose files the drawing read: every subject, or, drawing
    /// again an edition of the same publication day under the same
    /// rulebook, those of that edition and those changed since.
    pub read: u64,
    /// False when another server of the store had published it first.
    pub published: bool,
    /// An empty edition in place of one that the rulebook in force no
    /// longer publishes (the list is gone, or no longer public), so that
    /// the store holds no subject for it.
    pub withdrawn: bool,
}

/// A list due for publication: its index in the rulebook, its id and the
/// publication day whose edition it needs.
struct Due {
    index: u32,
    id: Name,
    day: Day,
    /// The mark of the stored edition when it is of `day` under the
    /// rulebook in force (`Edition::mark_ms`): drawn again, the edition
    /// needs only its own subjects and those changed since.
    since_ms: Option<i64>,
    named: Vec<SubjectId>,
    left_off: Vec<SubjectId>,
}

/// The subjects a drawing reads, a page at a time, each once: every
/// subject; or, when every list due has an edition of its publication
/// day under the rulebook in force with a mark, the subjects of those
/// editions and then those changed since the earliest mark. A subject's
/// standing on a past day changes only when a write changes its file, so
/// the others would come out as the edition has them.
struct Pages {
    /// The lists whose edition's subjects are still to read.
    lists: Vec<Name>,
    /// The edition's subjects read: the changed ones after them skip these.
    members: HashSet<SubjectId>,
    /// Changes from this instant on are read after the editions;
    /// `i64::MIN` reads every subject.
    since_ms: i64,
    /// The subject after which the current source's next page starts.
    after: Option<SubjectId>,
    /// Subjects handed out.
    read: u64,
}

impl Pages {
    fn new(due: &[Due]) -> Pages {
        let since = due
            .iter()
            .map(|list| list.since_ms)
            .collect::<Option<Vec<_>>>();
        let since_ms = since.and_then(|since| since.into_iter().min());
        Pages {
            lists: match since_ms {
                Some(_) => due.iter().map(|list| list.id).collect(),
                None => Vec::new(),
            },
            members: HashSet::new(),
            since_ms: since_ms.unwrap_or(i64::MIN),
            after: None,
            read: 0,
        }
    }

    /// The next page, None once every source is read.
    async fn next(&mut self, state: &AppState) -> Result<Option<Vec<SubjectId>>, StoreError> {
        let store = state.store();
        loop {
            let fresh: Vec<SubjectId> = if let Some(&list) = self.lists.first() {
                let page = store.edition_members(&list, self.after, PAGE).await?;
                let page = page.map(|page| page.members).unwrap_or_default();
                self.after = page.last().map(|m| m.subject);
                if self.after.is_none() {
                    self.lists.remove(0);
                    continue;
                }
                let subjects = page.into_iter().map(|m| m.subject);
                subjects.filter(|&s| self.members.insert(s)).collect()
            } else {
                let page = store
                    .subjects_changed(self.since_ms, self.after, PAGE)
                    .await?;
                let Some(&last) = page.last() else {
                    return Ok(None);
                };
                self.after = Some(last);
                let subjects = page.into_iter();
                subjects.filter(|s| !self.members.contains(s)).collect()
            };
            if !fresh.is_empty() {
                self.read += fresh.len() as u64;
                return Ok(Some(fresh));
            }
        }
    }
}

/// Publishes the editions that are due as of the registry's day, and
/// withdraws those of lists no longer published; returns them (none when
/// every public scheduled list has today's drawing).
pub async fn publish_due(state: &AppState) -> Result<Vec<Publication>, StoreError> {
    let current = state.current();
    let engine = &current.engine;
    let today = state.today();
    let store = state.store();
    // A server that has not yet taken a rulebook another installed (it
    // does within seconds) leaves the editions to the servers that have.
    if !in_force(state, &current.label).await? {
        return Ok(Vec::new());
    }
    // Nor while the files are still being recomputed with the rulebook in
    // force (an upload under way, or one a stopped server left): an
    // edition drawn then would read files folded with the one before.
    if store.unfinished_recompute().await?.is_some() {
        return Ok(Vec::new());
    }
    let mut published = withdraw_unpublished(state, &current).await?;
    if due_lists(state, &current).await?.is_empty() {
        return Ok(published);
    }
    // One server of the store draws; the others look again in a minute.
    if !hold_lease(state, LEASE_FOR_MS).await? {
        return Ok(published);
    }
    // Again under the lease: another server may have published meanwhile.
    let mut due = due_lists(state, &current).await?;
    if due.is_empty() {
        hold_lease(state, 0).await?;
        return Ok(published);
    }
    // Writes stamped from here on may not be seen by this drawing: the
    // next one reads them (see `Limits::redraw_margin_ms`).
    let mark_ms = socred_store::now_ms().saturating_sub(state.limits().redraw_margin_ms);
    let mut pages = Pages::new(&due);
    let mut renewed_ms = state.now_ms();
    loop {
        if state.now_ms() - renewed_ms >= RENEW_EVERY_MS {
            if !hold_lease(state, LEASE_FOR_MS).await? {
                tracing::warn!(
                    "another server took over the drawing of the editions due; this one stops"
                );
                return Ok(published);
            }
            renewed_ms = state.now_ms();
        }
        let Some(page) = pages.next(state).await? else {
            break;
        };
        let files = store.states_of(&page).await?;
        for (subject, file) in page.into_iter().zip(files) {
            let Some(file) = file else {
                continue;
            };
            // One reading a publication day, shared by the lists due that day.
            let mut readings = Vec::new();
            for list in &mut due {
                let at = match readings.iter().position(|(day, _)| *day == list.day) {
                    Some(at) => at,
                    None => {
                        readings.push((list.day, engine.evaluate(&file, list.day)));
                        readings.len() - 1
                    }
                };
                let standing = &readings[at].1;
                if standing.entries.iter().any(|e| e.list == list.index) {
                    list.named.push(subject);
                } else if standing.left_off.iter().any(|l| l.list == list.index) {
                    list.left_off.push(subject);
                }
            }
        }
    }
    let read = pages.read;
    for list in due {
        let at_ms = state.now_ms();
        let entry = |subject: Option<SubjectId>, detail: String| AuditDraft {
            at_ms,
            actor: "socred".into(),
            role: "system".into(),
            purpose: "publication".into(),
            action: "publish_list".into(),
            subject,
            detail,
        };
        // Those the publication day's edition named already were told.
        let before = named_before(state, &list.id, list.day).await?;
        let mut audit: Vec<AuditDraft> = list
            .named
            .iter()
            .filter(|subject| !before.contains(*subject))
            .map(|&subject| {
                entry(
                    Some(subject),
                    format!(
                        "named in the edition of public list `{}` for {} (rulebook {})",
                        list.id, list.day, current.label
                    ),
                )
            })
            .collect();
        audit.push(entry(
            None,
            format!(
                "edition of public list `{}` for {} (rulebook {}): {} subjects named, {} left off",
                list.id,
                list.day,
                current.label,
                list.named.len(),
                list.left_off.len()
            ),
        ));
        // Drawing an edition of a large registry takes a while: another
        // server may have installed a rulebook meanwhile.
        if !in_force(state, &current.label).await? {
            break;
        }
        let (named, left_off) = (list.named.len() as u64, list.left_off.len() as u64);
        let member = |named| move |subject| EditionMember { subject, named };
        let members = (list.named.into_iter().map(member(true)))
            .chain(list.left_off.into_iter().map(member(false)))
            .collect();
        let drawing = Drawing {
            day: list.day,
            rulebook: &current.label,
            drawn: today,
            mark_ms,
        };
        let done = store
            .publish_edition(&list.id, drawing, members, audit)
            .await?;
        published.push(Publication {
            list: list.id.to_string(),
            day: list.day,
            rulebook: current.label.clone(),
            named,
            left_off,
            read,
            published: done,
            withdrawn: false,
        });
    }
    // Done: the lease is given up at once.
    hold_lease(state, 0).await?;
    Ok(published)
}

/// The public scheduled lists whose stored edition is not the one due
/// today: of the last publication day, under the rulebook `current`,
/// drawn today.
async fn due_lists(state: &AppState, current: &Current) -> Result<Vec<Due>, StoreError> {
    let today = state.today();
    let mut due = Vec::new();
    for (index, list) in current.engine.rulebook.lists.iter().enumerate() {
        let Some(schedule) = list.edition_schedule().filter(|_| list.public) else {
            continue;
        };
        let day = schedule.publication(today).0;
        let edition = state.store().edition(&list.id).await?;
        if edition
            .as_ref()
            .is_some_and(|e| e.day == day && e.rulebook == current.label && e.drawn == today)
        {
            continue;
        }
        let since_ms = edition
            .filter(|e| e.day == day && e.rulebook == current.label)
            .and_then(|e| e.mark_ms);
        due.push(Due {
            index: index as u32,
            id: list.id,
            day,
            since_ms,
            named: Vec::new(),
            left_off: Vec::new(),
        });
    }
    Ok(due)
}

/// Takes or renews the drawing's lease for `for_ms` from now (0: gives it
/// up); whether this server holds it.
async fn hold_lease(state: &AppState, for_ms: i64) -> Result<bool, StoreError> {
    let now = state.now_ms();
    state
        .store()
        .lease(LEASE, state.instance(), now, now + for_ms)
        .await
}

/// The subjects that `list`'s stored edition names, if it is of the
/// publication day `day` (drawn on an earlier day, or under another
/// rulebook); none otherwise. A subject it kept only as left off was not
/// told, and is when a later drawing names it.
async fn named_before(
    state: &AppState,
    list: &str,
    day: Day,
) -> Result<HashSet<SubjectId>, StoreError> {
    let mut named = HashSet::new();
    let mut after = None;
    loop {
        let Some(page) = state.store().edition_members(list, after, PAGE).await? else {
            return Ok(named);
        };
        let Some(last) = page.members.last() else {
            return Ok(named);
        };
        if page.edition.day != day {
            return Ok(HashSet::new());
        }
        after = Some(last.subject);
        named.extend(page.members.iter().filter(|m| m.named).map(|m| m.subject));
    }
}

/// Whether the store still names `label` as the rulebook in force.
async fn in_force(state: &AppState, label: &str) -> Result<bool, StoreError> {
    Ok(state
        .label_in_force()
        .await?
        .is_none_or(|in_force| in_force == label))
}

/// Replaces with an empty one each stored edition that still names
/// subjects though the rulebook in force does not publish its list (an
/// upload dropped the list, or made it private): the subjects it named
/// are no longer kept for it.
async fn withdraw_unpublished(
    state: &AppState,
    current: &Current,
) -> Result<Vec<Publication>, StoreError> {
    let store = state.store();
    let mut withdrawn = Vec::new();
    for (list, edition) in store.editions().await? {
        let published = current
            .engine
            .rulebook
            .lists
            .iter()
            .any(|l| *l.id == *list && l.public && l.edition_schedule().is_some());
        if published || edition.members == 0 {
            continue;
        }
        let audit = AuditDraft {
            at_ms: state.now_ms(),
            actor: "socred".into(),
            role: "system".into(),
            purpose: "publication".into(),
            action: "withdraw_list".into(),
            subject: None,
            detail: format!(
                "edition of list `{list}` for {} withdrawn: the rulebook {} does not publish \
                 the list; {} subjects no longer kept for it",
                edition.day, current.label, edition.members
            ),
        };
        let drawing = Drawing {
            day: edition.day,
            rulebook: &current.label,
            drawn: state.today(),
            mark_ms: edition.mark_ms.unwrap_or(0),
        };
        let done = store
            .publish_edition(&list, drawing, Vec::new(), vec![audit])
            .await?;
        withdrawn.push(Publication {
            list,
            day: edition.day,
            rulebook: current.label.clone(),
            named: 0,
            left_off: 0,
            read: 0,
            published: done,
            withdrawn: true,
        });
    }
    Ok(withdrawn)
}

/// Runs [`publish_due`] at the start and then every minute, for as long as
/// the server runs; each edition goes to the log.
pub async fn keep_published(state: AppState) {
    loop {
        let started = std::time::Instant::now();
        match publish_due(&state).await {
            Ok(editions) => {
                let seconds = started.elapsed().as_secs_f64();
                for edition in editions.iter().filter(|e| e.published) {
                    if edition.withdrawn {
                        tracing::info!(
                            list = %edition.list,
                            day = %edition.day,
                            rulebook = %edition.rulebook,
                            "withdrew the edition of a list the rulebook no longer publishes"
                        );
                        continue;
                    }
                    tracing::info!(
                        list = %edition.list,
                        day = %edition.day,
                        rulebook = %edition.rulebook,
                        named = edition.named,
                        left_off = edition.left_off,
                        read = edition.read,
                        seconds,
                        "published an edition of a scheduled list"
                    );
                }
            }
            Err(error) => {
                tracing::error!(%error, "publishing a scheduled list failed; next try in a minute")
            }
        }
        tokio::time::sleep(EVERY).await;
    }
}
