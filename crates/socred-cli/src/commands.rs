//! One function per `socred` subcommand. They read and write files and
//! standard streams (the caller does I/O, the libraries compute).

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `println!` that returns the write's error rather than panicking when the
/// reader has gone (`socred … | head`): `main` then ends quietly.
macro_rules! out {
    ($($arg:tt)*) => {
        writeln!(io::stdout().lock(), $($arg)*)
    };
}

/// `eprintln!` that never panics: a diagnostic that nobody can read any
/// more (standard error closed) is dropped.
macro_rules! note {
    ($($arg:tt)*) => {{
        let _ = writeln!(io::stderr().lock(), $($arg)*);
    }};
}

use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressStyle};

use socred_core::file::Detail;
use socred_core::id::IdWarning;
use socred_core::printable::printable;
use socred_core::{Day, Engine, Fact, Period, Record, Rulebook, SubjectId};
use socred_schema::wire::{self, Item};

use crate::exit::{self, Code};

/// Where records come from and how to read them.
#[derive(Clone, Debug)]
pub struct Input {
    pub records: PathBuf,
    pub rulebook: Option<PathBuf>,
    pub as_of: Option<String>,
    /// Threads that parse and fold; every core when None.
    pub threads: Option<std::num::NonZeroUsize>,
}

impl Input {
    /// The day `--as-of` names, or today when it is not given.
    fn as_of(&self) -> anyhow::Result<Day> {
        match &self.as_of {
            Some(text) => Day::parse(text).with_context(|| "--as-of"),
            None => Ok(today()),
        }
    }

    /// Runs `work` on a pool of the threads asked for, on which parsing
    /// (`wire::read_ndjson`), the fold (`Engine::fold_all_parallel`) and
    /// writing credit files spread their work.
    fn on_threads<R: Send>(
        &self,
        work: impl FnOnce() -> anyhow::Result<R> + Send,
    ) -> anyhow::Result<R> {
        let mut pool = rayon::ThreadPoolBuilder::new();
        if let Some(threads) = self.threads {
            pool = pool.num_threads(threads.get());
        }
        pool.build()
            .context("cannot start the threads")?
            .install(work)
    }
}

pub fn id_check(text: &str) -> anyhow::Result<Code> {
    match SubjectId::parse(text) {
        Ok(parsed) => {
            out!(
                "{}: valid {} identifier",
                parsed.id,
                parsed.id.kind().as_str()
            )?;
            warn_pilot(text, parsed.warning);
            Ok(exit::OK)
        }
        Err(error) => {
            note!("error: {}: {error}", printable(text));
            Ok(exit::FAILURE)
        }
    }
}

pub fn rulebook_check(path: &Path) -> anyhow::Result<Code> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read rulebook {}", path.display()))?;
    match socred_schema::load_rulebook_bytes(&path.display().to_string(), &bytes) {
        Ok(rulebook) => {
            out!(
                "{}: rulebook {} is valid: {} record types, {} models, {} lists, {} measures",
                path.display(),
                rulebook.label(),
                rulebook.catalog.len(),
                rulebook.models.len(),
                rulebook.lists.len(),
                rulebook.measures.len()
            )?;
            Ok(exit::OK)
        }
        Err(errors) => {
            for problem in &errors.problems {
                note!("{problem}");
            }
            note!("{} problem(s) found", errors.problems.len());
            Ok(exit::FAILURE)
        }
    }
}

pub fn rulebook_default() -> anyhow::Result<Code> {
    io::stdout()
        .lock()
        .write_all(socred_schema::DEFAULT_RULEBOOK_TOML.as_bytes())?;
    Ok(exit::OK)
}

pub fn rulebook_schema() -> anyhow::Result<Code> {
    let schema = socred_schema::rulebook_json_schema();
    out!("{}", serde_json::to_string_pretty(&schema)?)?;
    Ok(exit::OK)
}

pub fn gen(seed: u64, subjects: u64, records: u64, start: &str, end: &str) -> anyhow::Result<Code> {
    let start = Day::parse(start).with_context(|| "--start")?;
    let end = Day::parse(end).with_context(|| "--end")?;
    if end < start {
        return Err(exit::Usage(format!("--end {end} is before --start {start}")).into());
    }
    let config = socred_sim::GenConfig {
        seed,
        subjects,
        records,
        start,
        end,
    };
    let progress = progress_bar(records, "records");
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut failed: Option<io::Error> = None;
    let mut lines = 0u64;
    socred_sim::generate(&config, &mut |line: &str| {
        if failed.is_some() {
            return;
        }
        if let Err(e) = out
            .write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
        {
            failed = Some(e);
        }
        lines += 1;
        if lines.is_multiple_of(65_536) {
            progress.set_position(lines.min(records));
        }
    });
    progress.finish_and_clear();
    if let Some(error) = failed {
        if error.kind() == io::ErrorKind::BrokenPipe {
            return Ok(exit::OK);
        }
        return Err(error).context("cannot write to stdout");
    }
    out.flush().context("cannot write to stdout")?;
    Ok(exit::OK)
}

/// Records and facts read from a file, with what was rejected.
struct Loaded {
    engine: Engine,
    records: Vec<Record>,
    facts: Vec<Fact>,
    rejected: u64,
    as_of: Day,
}

impl Loaded {
    /// The exit code once the work is done: whether a line was rejected.
    fn code(&self) -> Code {
        if self.rejected > 0 {
            exit::REJECTED
        } else {
            exit::OK
        }
    }
}

/// [`Loaded::code`], with the batch freed on the way out (see [`free_later`]).
fn finish(loaded: Loaded) -> Code {
    let code = loaded.code();
    free_later(loaded);
    code
}

fn load(input: &Input) -> anyhow::Result<Loaded> {
    load_with(input, load_rulebook(input.rulebook.as_deref())?)
}

/// [`load`] under a rulebook already loaded (a command that needs two
/// checks both before it reads any record).
fn load_with(input: &Input, rulebook: Rulebook) -> anyhow::Result<Loaded> {
    let as_of = input.as_of()?;
    let (reader, size): (Box<dyn Read>, Option<u64>) = if input.records.as_os_str() == "-" {
        (Box::new(io::stdin().lock()), None)
    } else {
        let file = File::open(&input.records)
            .with_context(|| format!("cannot open {}", input.records.display()))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let progress = progress_bar(size.unwrap_or(0), "bytes");
    let reader = BufReader::with_capacity(1 << 20, progress.wrap_read(reader));
    let label = input.records.display().to_string();
    let mut records = Vec::new();
    let mut facts = Vec::new();
    // The type each correction's fields were checked against, by its
    // place among the facts: few files have any.
    let mut declared: Vec<(usize, socred_core::Name)> = Vec::new();
    let mut rejected = 0u64;
    let mut stderr = io::stderr().lock();
    read_items(
        &rulebook,
        reader,
        &label,
        |item| match item {
            Item::Record(record) => records.push(record),
            Item::Fact { fact, record_type } => {
                if let Some(record_type) = record_type {
                    declared.push((facts.len(), record_type));
                }
                facts.push(fact);
            }
        },
        |rejection| {
            rejected += 1;
            let _ = writeln!(stderr, "{label}: {rejection}");
        },
    )
    .with_context(|| format!("cannot read {label}"))?;
    progress.finish_and_clear();
    for refused in corrections_of_another_type(&records, &mut facts, &declared) {
        rejected += 1;
        let _ = writeln!(stderr, "{label}: {refused}");
    }
    if rejected > 0 {
        note!("{rejected} line(s) rejected in {label}");
    }
    let engine = Engine::new(Arc::new(rulebook));
    Ok(Loaded {
        engine,
        records,
        facts,
        rejected,
        as_of,
    })
}

/// Takes out of `facts` each correction whose fields were checked against
/// another type than the record it names has (`declared`: the fact's place
/// and the type it gave), as a store refuses it: fields of one type must
/// not replace another's. Returns what each was, for the report.
fn corrections_of_another_type(
    records: &[Record],
    facts: &mut Vec<Fact>,
    declared: &[(usize, socred_core::Name)],
) -> Vec<String> {
    use std::collections::HashMap;
    if declared.is_empty() {
        return Vec::new();
    }
    let mut named: HashMap<(SubjectId, &socred_core::RecordKey), Vec<(usize, &socred_core::Name)>> =
        HashMap::new();
    for (at, given) in declared {
        if let Some(key) = facts
            .get(*at)
            .and_then(|fact| Some((fact.subject, fact.record()?)))
        {
            named.entry(key).or_default().push((*at, given));
        }
    }
    let mut refused: Vec<(usize, String)> = Vec::new();
    for record in records {
        let Some(corrections) = named.get(&(record.subject, &record.key)) else {
            continue;
        };
        for &(at, given) in corrections
            .iter()
            .filter(|(_, given)| **given != record.type_id)
        {
            refused.push((
                at,
                format!(
                    "a correction of record {}/{} of {} gives fields of type `{given}`, but the \
                     record is of type `{}`: not applied (a store refuses it as a conflict)",
                    record.key.provider, record.key.id, record.subject, record.type_id
                ),
            ));
        }
    }
    refused.sort_by_key(|(at, _)| *at);
    refused.dedup_by_key(|(at, _)| *at);
    let mut at = 0;
    facts.retain(|_| {
        let keep = refused
            .binary_search_by_key(&at, |(place, _)| *place)
            .is_err();
        at += 1;
        keep
    });
    refused.into_iter().map(|(_, message)| message).collect()
}

/// Reads the items of `reader`, a file named `label` in messages.
fn read_items(
    rulebook: &Rulebook,
    reader: impl BufRead,
    label: &str,
    on_item: impl FnMut(Item),
    on_rejection: impl FnMut(wire::Rejection),
) -> io::Result<()> {
    let mut stderr = io::stderr();
    wire::read_ndjson(rulebook, reader, on_item, on_rejection, |warning| {
        let _ = writeln!(
            stderr,
            "{label}: warning: line {}: {}",
            warning.line, warning.message
        );
    })?;
    Ok(())
}

fn load_rulebook(path: Option<&Path>) -> anyhow::Result<Rulebook> {
    let Some(path) = path else {
        return Ok(socred_schema::default_rulebook());
    };
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read rulebook {}", path.display()))?;
    socred_schema::load_rulebook_bytes(&path.display().to_string(), &bytes)
        .map_err(|errors| anyhow::anyhow!("rulebook has problems:\n{errors}"))
}

/// Credit files written per task: each thread evaluates and serialises a
/// slice of the states, and the slices go out in subject order.
const FILES_PER_TASK: usize = 1024;

pub fn score(input: Input, full: bool) -> anyhow::Result<Code> {
    input.on_threads(|| score_on_threads(&input, full))
}

fn score_on_threads(input: &Input, full: bool) -> anyhow::Result<Code> {
    let loaded = load(input)?;
    let states = loaded
        .engine
        .fold_all_parallel(&loaded.records, &loaded.facts, loaded.as_of);
    let code = write_files(&loaded, &states, full);
    free_later((loaded, states));
    code
}

/// Frees `value` on a thread of its own. The command line exits right
/// after: freeing every parsed record and folded state one by one only
/// delayed the exit (a sixth of `socred score`'s time at a million
/// records, a quarter at ten million; BENCHMARKS.md), and exiting does
/// not wait for this thread.
fn free_later<T: Send + 'static>(value: T) {
    // Should the thread not start, the closure and `value` drop here.
    let _ = std::thread::Builder::new()
        .name("socred-free".into())
        .spawn(move || drop(value));
}

/// Writes the credit file of each state to stdout, in order; a subject
/// nothing is known about by the as-of day (its records all decided
/// later) has none, as it has no step of a timeline.
fn write_files(
    loaded: &Loaded,
    states: &[socred_core::state::SubjectState],
    full: bool,
) -> anyhow::Result<Code> {
    use rayon::prelude::*;
    let engine = &loaded.engine;
    let detail = if full { Detail::Full } else { Detail::Summary };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    // A few slices for each thread at a time: memory stays bounded by them.
    let wave = FILES_PER_TASK * rayon::current_num_threads().saturating_mul(4).max(1);
    for states in states.chunks(wave) {
        let written: Vec<Vec<u8>> = states
            .par_chunks(FILES_PER_TASK)
            .map(|states| {
                let mut bytes = Vec::new();
                for state in states.iter().filter(|state| !state.is_empty()) {
                    let standing = engine.evaluate(state, loaded.as_of);
                    let file = engine.credit_file(&standing, detail);
                    serde_json::to_writer(&mut bytes, &file)?;
                    bytes.push(b'\n');
                }
                Ok(bytes)
            })
            .collect::<Result<_, serde_json::Error>>()
            .context("cannot write a credit file as JSON")?;
        for bytes in written {
            if let Err(error) = out.write_all(&bytes) {
                if error.kind() == io::ErrorKind::BrokenPipe {
                    return Ok(exit::OK);
                }
                return Err(error).context("cannot write to stdout");
            }
        }
    }
    match out.flush() {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => return Ok(exit::OK),
        flushed => flushed.context("cannot write to stdout")?,
    }
    Ok(loaded.code())
}

pub fn decide(input: Input, subject: &str, measures: &[String]) -> anyhow::Result<Code> {
    input.on_threads(|| decide_on_threads(&input, subject, measures))
}

fn decide_on_threads(input: &Input, subject: &str, measures: &[String]) -> anyhow::Result<Code> {
    let subject = parse_subject(subject)?;
    // The measures are checked before the records are read: a misspelt
    // one shows at once, not after a pass over the file.
    let rulebook = load_rulebook(input.rulebook.as_deref())?;
    for id in measures {
        if rulebook.measure(id).is_none() {
            let known: Vec<&str> = rulebook.measures.iter().map(|m| &*m.id).collect();
            bail!(
                "no measure `{}` in rulebook {}; known: {}",
                printable(id),
                rulebook.label(),
                known.join(", ")
            );
        }
    }
    let loaded = load_with(input, rulebook)?;
    let engine = &loaded.engine;
    let rulebook = &engine.rulebook;
    let state = subject_state(&loaded, subject);
    let standing = engine.evaluate(&state, loaded.as_of);
    let mut out = io::stdout().lock();
    for measure in &rulebook.measures {
        let wanted = if measures.is_empty() {
            measure.subject_kinds.contains(subject.kind())
        } else {
            measures.iter().any(|m| **m == *measure.id)
        };
        if wanted {
            let decision = engine.decide(&standing, measure);
            writeln!(out, "{}", serde_json::to_string(&decision)?)?;
        }
    }
    Ok(finish(loaded))
}

/// What-if: the records folded under the base rulebook (`--rulebook`, or
/// the default) and under `against`, compared (`socred_core::whatif`), as
/// one JSON report on stdout.
pub fn whatif(input: Input, against: &Path, group_min: u64) -> anyhow::Result<Code> {
    if input.records.as_os_str() == "-" {
        return Err(exit::Usage(
            "--records: what-if reads the records once for each rulebook; give a file, not \
             standard input"
                .to_string(),
        )
        .into());
    }
    // Both rulebooks are checked before the records are read: a mistake
    // in the second shows at once, not after a first pass over the file.
    let base_rulebook = load_rulebook(input.rulebook.as_deref())?;
    let other_rulebook = load_rulebook(Some(against))?;
    input.on_threads(|| {
        let base = load_with(&input, base_rulebook)?;
        note!(
            "reading {} again, for {}",
            input.records.display(),
            against.display()
        );
        let other = load_with(&input, other_rulebook)?;
        let day = base.as_of;
        let base_states = base
            .engine
            .fold_all_parallel(&base.records, &base.facts, day);
        let other_states = other
            .engine
            .fold_all_parallel(&other.records, &other.facts, day);
        let report = socred_core::whatif::compare(
            (&base.engine, &base_states),
            (&other.engine, &other_states),
            day,
            group_min,
        );
        print_report(&report)?;
        let code = if base.rejected > 0 || other.rejected > 0 {
            exit::REJECTED
        } else {
            exit::OK
        };
        free_later((base, other, base_states, other_states));
        Ok(code)
    })
}

/// `socred timeline`: the registry of `input`'s records as it read on each
/// day from `from` to `--as-of`, `every` apart.
pub fn timeline(input: Input, from: &str, every: &str, group_min: u64) -> anyhow::Result<Code> {
    let from = Day::parse(from).context("--from")?;
    let every: Period = every
        .parse()
        .context("--every: an ISO 8601 period such as P3M")?;
    // The steps are checked before the records are read.
    let plan = socred_core::timeline::Plan::new(from, input.as_of()?, every, group_min)
        .map_err(|error| exit::Usage(format!("--from, --as-of and --every: {error}")))?;
    input.on_threads(|| {
        let loaded = load(&input)?;
        let progress = progress_bar(plan.days.len() as u64, "steps");
        let report = loaded
            .engine
            .timeline(&loaded.records, &loaded.facts, &plan, |_| progress.inc(1));
        progress.finish_and_clear();
        print_report(&report)?;
        Ok(finish(loaded))
    })
}

pub fn explain(input: Input, subject: &str, json: bool) -> anyhow::Result<Code> {
    input.on_threads(|| explain_on_threads(&input, subject, json))
}

fn explain_on_threads(input: &Input, subject: &str, json: bool) -> anyhow::Result<Code> {
    let subject = parse_subject(subject)?;
    let loaded = load(input)?;
    let state = subject_state(&loaded, subject);
    let standing = loaded.engine.evaluate(&state, loaded.as_of);
    let file = loaded.engine.credit_file(&standing, Detail::Full);
    if json {
        out!("{}", serde_json::to_string_pretty(&file)?)?;
    } else {
        io::stdout().lock().write_all(file.explain().as_bytes())?;
    }
    Ok(finish(loaded))
}

/// The subject's state, with entries reaching it from related subjects:
/// folded from its own records and those of the subjects that name it, not
/// from every subject in the file (`Engine::fold_subject_of`).
fn subject_state(loaded: &Loaded, subject: SubjectId) -> socred_core::SubjectState {
    // The file of a subject the records never name reads like that of one
    // who has not consented: say which it is. A subject named only in
    // another's record (a company's legal representative) is known.
    if !loaded
        .engine
        .is_named(subject, &loaded.records, &loaded.facts)
    {
        note!(
            "note: the records name nothing about {subject}: the file below is that of a subject \
             the registry knows nothing about"
        );
    }
    loaded
        .engine
        .fold_subject_of(subject, &loaded.records, &loaded.facts, loaded.as_of)
}

fn parse_subject(text: &str) -> anyhow::Result<SubjectId> {
    let parsed =
        SubjectId::parse(text).with_context(|| format!("--subject {}", printable(text)))?;
    warn_pilot(text, parsed.warning);
    Ok(parsed.id)
}

/// An early pilot code is accepted, never silently.
fn warn_pilot(text: &str, warning: Option<IdWarning>) {
    if let Some(IdWarning::PilotCheckCharacter { expected, found }) = warning {
        note!(
            "warning: {text}: check character is `{found}`, expected `{expected}`; accepted as an early pilot code"
        );
    }
}

/// A report as pretty JSON on stdout. Into bytes first: an error writing
/// them is then an I/O error, which a reader gone away (`| head`) is not a
/// failure of.
fn print_report(report: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_vec_pretty(report).context("cannot write the report")?;
    text.push(b'\n');
    io::stdout()
        .lock()
        .write_all(&text)
        .context("cannot write the report")
}

/// Today in China Standard Time, as the server reads it: the only place
/// the command line reads the clock, for a default as-of day.
fn today() -> Day {
    use socred_server::Clock;
    socred_server::SystemClock.today()
}

fn progress_bar(length: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(length);
    let template = format!("{{spinner}} {{bar:40}} {{pos}}/{{len}} {unit} ({{eta}} left)");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

pub fn serve(config: socred_server::ServeConfig) -> anyhow::Result<Code> {
    socred_server::serve_blocking(config)?;
    Ok(exit::OK)
}

pub fn backup(data: &Path, to: &Path) -> anyhow::Result<Code> {
    let report = socred_server::backup(data, to)?;
    out!("{report}")?;
    Ok(exit::OK)
}

pub fn verify(data: &Path, store: Option<&str>) -> anyhow::Result<Code> {
    let report = socred_server::verify(data, store)?;
    out!("{report}")?;
    Ok(if report.is_ok() {
        exit::OK
    } else {
        exit::FAILURE
    })
}
