//! `socred`: the command line. Each subcommand parses its arguments and
//! calls one library function; exit codes are documented in `exit`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use socred_cli::{commands, exit};

/// mimalloc instead of the C library's allocator: the server allocates and
/// frees many small values per request on several threads, where glibc's
/// allocator took about a tenth of its processor time (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "socred",
    version,
    about = "An auditable social credit registry"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Identifiers of credit subjects.
    Id {
        #[command(subcommand)]
        command: IdCommand,
    },
    /// Rulebooks: check one, print the default, print the JSON Schema.
    Rulebook {
        #[command(subcommand)]
        command: RulebookCommand,
    },
    /// Writes a seeded synthetic population's records as NDJSON on stdout.
    Gen {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Persons and organisations together, from 1 to 2^32; the
        /// population is drawn in memory first, about 70 bytes a subject.
        #[arg(long, default_value_t = 1000,
              value_parser = clap::value_parser!(u64).range(1..=socred_sim::SUBJECTS_MAX))]
        subjects: u64,
        #[arg(long, default_value_t = 10_000)]
        records: u64,
        /// First day of the records, from 1986-01-01 (persons are 18 to 85
        /// years old that day, and born in 1900 or later) to 2117-12-31.
        #[arg(long, default_value = "2021-01-01", value_parser = gen_start_argument)]
        start: String,
        /// Last day of the records.
        #[arg(long, default_value = "2026-10-31", value_parser = day_argument)]
        end: String,
    },
    /// Folds records into credit files, one JSON line per subject known by the as-of day, on stdout.
    Score {
        #[command(flatten)]
        input: InputArgs,
        /// Also write every record, effect and list entry.
        #[arg(long)]
        full: bool,
    },
    /// Decides whether measures apply to a subject, with the reasons.
    Decide {
        #[command(flatten)]
        input: InputArgs,
        /// The subject: an identity card number or a unified social credit code.
        #[arg(long, value_parser = subject_argument)]
        subject: String,
        /// A measure id; repeat for several. Without it, every measure for the subject's kind.
        #[arg(long)]
        measure: Vec<String>,
    },
    /// Runs the registry: the HTTP API over the embedded store in `--data`.
    Serve {
        /// Data directory of the embedded store (created on first start).
        #[arg(long, default_value = "socred-data")]
        data: PathBuf,
        /// Address to listen on (port 0: any free port, printed at start).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Fill an empty store with a synthetic city and print a token per role.
        #[arg(long)]
        demo: bool,
        /// Another store than the one in `--data`: `sqlite:DIR`, `memory:`, or
        /// `postgres://user@host:port/db` (or the `SOCRED_STORE` environment variable).
        #[arg(long, env = "SOCRED_STORE", value_parser = store_argument)]
        store: Option<String>,
        /// Records the embedded store keeps decoded for refolding subjects
        /// on ingest (a few hundred bytes each); past it, a subject's history
        /// is read back from the file.
        #[arg(long, value_name = "RECORDS", default_value_t = socred_server::HISTORY_RECORDS_DEFAULT)]
        history_cache: usize,
    },
    /// Checks the audit log's hash chain and recomputes every subject's file
    /// from its records: exit 0 when consistent, 1 on any problem.
    Verify {
        /// Data directory of the embedded store.
        #[arg(long, default_value = "socred-data")]
        data: PathBuf,
        /// Another store than the one in `--data`, as `serve` takes it:
        /// `sqlite:DIR` or `postgres://user@host:port/db` (or the
        /// `SOCRED_STORE` environment variable).
        #[arg(long, env = "SOCRED_STORE", value_parser = store_argument)]
        store: Option<String>,
    },
    /// Copies the embedded store, while the server runs, into a new
    /// directory that `serve --data` and `verify --data` open as they are;
    /// the audit log records the backup.
    Backup {
        /// Data directory of the embedded store.
        #[arg(long, default_value = "socred-data")]
        data: PathBuf,
        /// The new directory for the copy (it must not exist, or be empty).
        #[arg(long)]
        to: PathBuf,
    },
    /// What-if: what another rulebook would make of the same records,
    /// against the base one, as a JSON report of counts (grades, lists,
    /// measures, and who moves between them).
    Whatif {
        #[command(flatten)]
        input: InputArgs,
        /// The other rulebook (TOML), compared with `--rulebook`.
        #[arg(long)]
        against: PathBuf,
        #[command(flatten)]
        groups: GroupArgs,
    },
    /// Timeline: the registry as it read on each day from `--from` to
    /// `--as-of`, `--every` apart, as a JSON report of counts (grades,
    /// lists, measures, and who entered or left each since the step
    /// before, also by group).
    Timeline {
        #[command(flatten)]
        input: InputArgs,
        /// The first day (YYYY-MM-DD); the last is `--as-of`.
        #[arg(long, value_parser = day_argument)]
        from: String,
        /// The time between steps, an ISO 8601 period.
        #[arg(long, default_value = "P3M", value_parser = period_argument)]
        every: String,
        #[command(flatten)]
        groups: GroupArgs,
    },
    /// A subject's credit file as text for a person to read.
    Explain {
        #[command(flatten)]
        input: InputArgs,
        /// The subject: an identity card number or a unified social credit code.
        #[arg(long, value_parser = subject_argument)]
        subject: String,
        /// Write the full file as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum IdCommand {
    /// Validates an identifier: exit 0 when valid (warnings are printed), 1 when not.
    Check {
        /// An 18-character identity card number or unified social credit code.
        id: String,
    },
}

#[derive(Subcommand)]
enum RulebookCommand {
    /// Reports every problem of a rulebook file with its line and column.
    Check {
        /// The rulebook file (TOML).
        file: PathBuf,
    },
    /// Prints the built-in default rulebook.
    Default,
    /// Prints the JSON Schema of the rulebook format.
    Schema,
}

#[derive(clap::Args)]
struct GroupArgs {
    /// The fewest subjects a group of the report may count: smaller groups
    /// (a province, a decade of birth) are pooled as `other`, with the
    /// smallest others while the pool is small too, so that no group
    /// singles people out.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    group_min: u64,
}

#[derive(clap::Args)]
struct InputArgs {
    /// NDJSON file of records and later facts (`-` for stdin).
    #[arg(long)]
    records: PathBuf,
    /// Rulebook file (TOML); the built-in default when absent.
    #[arg(long)]
    rulebook: Option<PathBuf>,
    /// The day to read the files as of (YYYY-MM-DD); today in China Standard Time when absent.
    #[arg(long, value_parser = day_argument)]
    as_of: Option<String>,
    /// Threads that parse the records and fold them, 1 to 256; every core
    /// when absent. The output is the same, byte for byte, whatever the
    /// number.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
}

/// A day argument checked as the command line is read, so that a bad one
/// is a usage error (exit 2) like any other.
/// A store's address, as `serve` and `verify` take it: a usage error
/// (exit 2) when it names no kind of store.
fn store_argument(text: &str) -> Result<String, String> {
    const KINDS: [&str; 5] = [
        "sqlite://",
        "sqlite:",
        "memory:",
        "postgres://",
        "postgresql://",
    ];
    if KINDS.iter().any(|kind| text.starts_with(kind)) {
        Ok(text.to_string())
    } else {
        Err("use sqlite:DIR, memory: or postgres://user@host:port/db".to_string())
    }
}

fn day_argument(text: &str) -> Result<String, String> {
    socred_core::Day::parse(text)
        .map(|_| text.to_string())
        .map_err(|error| error.to_string())
}

/// The first day of `socred gen`'s records: persons are 18 to 85 years
/// old on it, and a person number carries a birth year from 1900 to 2099.
fn gen_start_argument(text: &str) -> Result<String, String> {
    let day = socred_core::Day::parse(text).map_err(|error| error.to_string())?;
    let (first, last) = socred_sim::START_RANGE;
    if day < first || day > last {
        return Err(format!(
            "{day} is outside {first} to {last}: persons are 18 to 85 years old on the first \
             day, and born from 1900 to 2099"
        ));
    }
    Ok(text.to_string())
}

/// An ISO 8601 period (`P3M`), checked as the command line is read.
fn period_argument(text: &str) -> Result<String, String> {
    text.parse::<socred_core::Period>()
        .map(|_| text.to_string())
        .map_err(|error| format!("{error} (an ISO 8601 period such as P3M)"))
}

/// A subject's identifier, checked as the command line is read (an early
/// pilot code is taken, and warned about when it is used).
fn subject_argument(text: &str) -> Result<String, String> {
    socred_core::SubjectId::parse(text)
        .map(|_| text.to_string())
        .map_err(|error| error.to_string())
}

impl InputArgs {
    fn into_input(self) -> commands::Input {
        commands::Input {
            records: self.records,
            rulebook: self.rulebook,
            as_of: self.as_of,
            threads: self
                .threads
                .and_then(|n| std::num::NonZeroUsize::new(usize::from(n))),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Id {
            command: IdCommand::Check { id },
        } => commands::id_check(&id),
        Command::Rulebook { command } => match command {
            RulebookCommand::Check { file } => commands::rulebook_check(&file),
            RulebookCommand::Default => commands::rulebook_default(),
            RulebookCommand::Schema => commands::rulebook_schema(),
        },
        Command::Gen {
            seed,
            subjects,
            records,
            start,
            end,
        } => commands::gen(seed, subjects, records, &start, &end),
        Command::Score { input, full } => commands::score(input.into_input(), full),
        Command::Decide {
            input,
            subject,
            measure,
        } => commands::decide(input.into_input(), &subject, &measure),
        Command::Serve {
            data,
            listen,
            demo,
            store,
            history_cache,
        } => commands::serve(socred_server::ServeConfig {
            data_dir: data,
            listen,
            demo,
            store,
            history_cache,
        }),
        Command::Verify { data, store } => commands::verify(&data, store.as_deref()),
        Command::Backup { data, to } => commands::backup(&data, &to),
        Command::Whatif {
            input,
            against,
            groups,
        } => commands::whatif(input.into_input(), &against, groups.group_min),
        Command::Timeline {
            input,
            from,
            every,
            groups,
        } => commands::timeline(input.into_input(), &from, &every, groups.group_min),
        Command::Explain {
            input,
            subject,
            json,
        } => commands::explain(input.into_input(), &subject, json),
    };
    match result {
        Ok(code) => code.into(),
        // The reader of standard output went away (`socred … | head`):
        // what it wanted it has, so this is no failure.
        Err(error)
            if error.chain().any(|cause| {
                cause
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            exit::OK.into()
        }
        Err(error) => {
            use std::io::Write as _;
            // Line by line: a message may span lines on purpose, but
            // nothing in it may colour the terminal or reorder its text.
            let text = format!("{error:#}");
            let lines: Vec<_> = text
                .lines()
                .map(socred_core::printable::printable)
                .collect();
            let _ = writeln!(std::io::stderr().lock(), "error: {}", lines.join("\n"));
            // Arguments that contradict each other are a usage error, as
            // one the parser refuses.
            if error.downcast_ref::<exit::Usage>().is_some() {
                exit::USAGE.into()
            } else {
                exit::FAILURE.into()
            }
        }
    }
}
