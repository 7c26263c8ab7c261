//! `catg`: the command line. `serve` (the whole service in one process), `inspect` and `render`
//! (one file, no server), `sign` (a signed URL), `reconcile` (repair a data folder), and
//! `backfill`, `warm` and `report` (bulk work on a data folder, or with `--aws`, a build with the
//! `aws` feature, on the deployed stack).
//!
//! Contract (relied on by tests and tools outside this repository):
//! - success: exit 0 and one JSON object on stdout;
//! - a rejected input or invalid recipe: exit 2 and `{"error":{"kind":…,"message":…}}` on stdout;
//! - anything else (I/O, usage): exit 1 with a message on stderr.

use catg_core::config::{image_limits, process_env, recipe_limits, render_memory_mib, signing_keys};
use catg_core::model::SummaryText;
use catg_core::signing::{unix_now, INFO_SIGNED_FORM, SIG_PARAM};
use catg_core::{examine, render_variant, validate_key, Error, Fingerprint, Recipe, RenderBudget, SignedTarget};
use catg_image::{memory_estimate, verify_memory_estimate, Limits};
use clap::{Parser, Subcommand};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::json;
use std::fs::File;
use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod backfill;
mod deployed;
mod serve;
mod warm;

#[derive(Debug, Parser)]
#[command(name = "catg", version, about = "Image variants on demand from a content-addressed store")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print what ingest would record of an image as JSON: fingerprint, header, and (decoding it
    /// once) its placeholder, dominant colour and perceptual hash.
    Inspect {
        /// The image file.
        file: PathBuf,
        /// Read the header only: fast on huge files, and answers for a file whose image data is cut
        /// short (no thumbhash, dominant_color or phash).
        #[arg(long)]
        header_only: bool,
    },
    /// Render one variant of an image and print its cache key and size as JSON.
    Render {
        /// The source image file.
        file: PathBuf,
        /// The recipe, as in a URL query string: 'w=400&h=300&fit=cover&fmt=webp&q=80'.
        #[arg(long, default_value = "")]
        recipe: String,
        /// The client's Accept header, used when the recipe says fmt=auto (the default).
        #[arg(long)]
        accept: Option<String>,
        /// Where to write the variant.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
    /// Print a signed URL for an image and recipe, signed with the first key in
    /// CATG_SIGNING_KEYS (what `catg serve` and the resolver check when signing is on).
    Sign {
        /// The source key as it appears in the URL path, unencoded ('cats/tom.jpg'),
        /// '_/<fingerprint>' for an immutable URL, or '_/<fingerprint>/info' for its info.
        path: String,
        /// The recipe, as in a URL query string: 'w=400&fmt=webp' ('info=1' for a key's info).
        #[arg(long, default_value = "")]
        recipe: String,
        /// The URL stops working this many seconds from now (default: never).
        #[arg(long)]
        expires_in: Option<u64>,
        /// Where catg is served: the CloudFront domain on AWS.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        base_url: String,
    },
    /// Check the data folder against the source folder and the stored variants, repair what
    /// disagrees (see docs/operations.md, "Reconcile") and print what was found as JSON. Run while
    /// `catg serve` is stopped.
    Reconcile {
        /// The folder of source images.
        #[arg(long, default_value = "./images")]
        source: PathBuf,
        /// catg's data folder.
        #[arg(long, default_value = "./.catg")]
        data: PathBuf,
        /// Only report; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print what the data folder holds (sources, assets, duplicates, variants and bytes by
    /// state) and a monthly cost estimate for running it on AWS, beside pre-generating a fixed
    /// set of variants per upload, as JSON (see docs/deploy.md, "What it costs").
    Report {
        #[command(flatten)]
        stores: StoreArgs,
        /// Image requests a month (take them from catg_requests_total).
        #[arg(long, default_value_t = 10e6)]
        requests_per_month: f64,
        /// New source images a month.
        #[arg(long, default_value_t = 10_000.0)]
        uploads_per_month: f64,
        /// Share of requests answered by CloudFront's cache.
        #[arg(long, default_value_t = 0.95)]
        cdn_hit_ratio: f64,
        /// Variants pre-generation would render for every upload.
        #[arg(long, default_value_t = 12.0)]
        pregenerate: f64,
        /// A JSON file of prices overriding the defaults (us-east-1, 2025), e.g.
        /// {"s3_per_gb_month": 0.025}; every field is listed in the output.
        #[arg(long)]
        prices: Option<PathBuf>,
    },
    /// Ingest a folder (or, with --aws, the deployed stack's source bucket) that predates catg:
    /// bounded concurrency, a progress bar, and a checkpoint so an interrupted run resumes.
    /// Prints a summary as JSON.
    Backfill(backfill::BackfillArgs),
    /// Pre-render recipes for every image under a prefix, so first requests are hits; locally
    /// with render workers in this process, or with --aws by queueing jobs for the deployed
    /// transform function. Prints a summary as JSON.
    Warm(warm::WarmArgs),
    /// Serve variants of the images in a folder over HTTP: ingest, resolver and render workers
    /// in one process, with SQLite and a durable queue in the data folder.
    Serve(serve::ServeArgs),
}

/// Which stores a bulk command works on: a source folder and data folder, or with `--aws` the
/// deployed stack (named by the functions' environment variables).
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The folder of source images.
    #[arg(long, default_value = "./images")]
    pub source: PathBuf,
    /// catg's data folder.
    #[arg(long, default_value = "./.catg")]
    pub data: PathBuf,
    /// The deployed stack instead: its buckets, table and queue, from the same environment
    /// variables as the functions (CATG_SOURCE_BUCKET, CATG_TABLE, …), with your credentials.
    #[arg(long)]
    pub aws: bool,
}

/// How a command failed, and so which exit code it gets.
#[derive(Debug)]
enum Failure {
    /// The input or recipe was refused: exit 2, JSON on stdout.
    Rejected { kind: String, message: String },
    /// catg could not do its job: exit 1, message on stderr.
    Failed(String),
}

/// The one place where errors become exit codes.
impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        match e.reject_kind() {
            Some(kind) => Failure::Rejected { kind: kind.to_string(), message: public_message(&e) },
            None => Failure::Failed(e.to_string()),
        }
    }
}

fn public_message(e: &Error) -> String {
    match e {
        Error::InvalidRecipe(r) => r.message().to_string(),
        other => other.to_string(),
    }
}

fn main() -> ExitCode {
    catg_image::memory::reuse_large_buffers();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { ExitCode::from(1) } else { ExitCode::SUCCESS };
            let _ = e.print();
            return code;
        }
    };
    let result = match cli.command {
        Command::Inspect { file, header_only } => inspect(&file, header_only),
        Command::Render { file, recipe, accept, output } => render(&file, &recipe, accept.as_deref(), &output),
        Command::Sign { path, recipe, expires_in, base_url } => sign(&path, &recipe, expires_in, &base_url),
        Command::Reconcile { source, data, dry_run } => reconcile(&source, &data, dry_run),
        Command::Backfill(args) => backfill::run(args).map_err(Failure::Failed),
        Command::Warm(args) => warm::run(args).map_err(Failure::Failed),
        Command::Report { stores, requests_per_month, uploads_per_month, cdn_hit_ratio, pregenerate, prices } => {
            let usage = catg_core::report::Usage {
                requests_per_month,
                new_uploads_per_month: uploads_per_month,
                cdn_hit_ratio,
                pregenerated_per_upload: pregenerate,
                ..Default::default()
            };
            report(&stores, usage, prices.as_deref())
        }
        Command::Serve(args) => {
            return match serve::run(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => {
                    eprintln!("catg: {message}");
                    ExitCode::from(1)
                }
            };
        }
    };
    match result {
        Ok(value) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(Failure::Rejected { kind, message }) => {
            println!("{}", json!({ "error": { "kind": kind, "message": message } }));
            ExitCode::from(2)
        }
        Err(Failure::Failed(message)) => {
            eprintln!("catg: {message}");
            ExitCode::from(1)
        }
    }
}

fn open(path: &Path) -> Result<BufReader<File>, Failure> {
    File::open(path).map(BufReader::new).map_err(|e| Failure::Failed(format!("cannot read {}: {e}", path.display())))
}

/// The file's length, as a hint for reading it (0 if unknown).
fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Decode the first frame of an image that declares alpha (`Examined::confirm_alpha`), within
/// the same memory budget as `catg serve` (`CATG_RENDER_MEMORY_MB`): what would not fit there
/// is refused here too, before anything is allocated.
fn confirm_alpha_within(
    examined: &mut catg_core::Examined,
    limits: &Limits,
    budget: &RenderBudget,
) -> Result<(), Failure> {
    if let (Ok(probe), Some(body)) = (&examined.verdict, &examined.body) {
        if probe.has_alpha {
            budget.admit(verify_memory_estimate(probe, body.len())).map_err(Error::from)?;
        }
    }
    examined.confirm_alpha(limits);
    Ok(())
}

fn config_failure(e: impl std::fmt::Display) -> Failure {
    Failure::Failed(e.to_string())
}

/// What ingest would record of a file: its header, and (decoding it once, within the memory
/// budget) its real alpha, placeholder, dominant colour and perceptual hash.
fn inspect(file: &Path, header_only: bool) -> Result<serde_json::Value, Failure> {
    let limits = image_limits(process_env).map_err(config_failure)?;
    let budget = RenderBudget::new(render_memory_mib(process_env).map_err(config_failure)?);
    let mut examined = examine(open(file)?, file_size(file), &limits).map_err(Error::from)?;
    let summary = if header_only {
        None
    } else {
        if let (Ok(probe), Some(body)) = (&examined.verdict, &examined.body) {
            budget.admit(verify_memory_estimate(probe, body.len())).map_err(Error::from)?;
        }
        examined.verify(&limits)
    };
    let probe = examined.verdict.map_err(Error::from)?;
    let summary = summary.as_ref().map(SummaryText::of);
    Ok(json!({
        "fingerprint": examined.fingerprint.to_hex(),
        "format": probe.format.as_str(),
        "width": probe.width(),
        "height": probe.height(),
        "orientation": probe.orientation.exif_value(),
        "has_alpha": probe.has_alpha,
        "frames": probe.frames,
        "has_icc": probe.has_icc,
        "bytes": examined.bytes,
        "thumbhash": summary.as_ref().map(|s| &s.thumbhash),
        "dominant_color": summary.as_ref().map(|s| &s.dominant_color),
        "phash": summary.as_ref().map(|s| &s.phash),
    }))
}

fn sign(path: &str, query: &str, expires_in: Option<u64>, base_url: &str) -> Result<serde_json::Value, Failure> {
    let keys = signing_keys(process_env)
        .map_err(config_failure)?
        .ok_or_else(|| Failure::Failed("set CATG_SIGNING_KEYS=id:secret (secret: `openssl rand -base64 32`)".into()))?;
    let query = query.strip_prefix('?').unwrap_or(query);
    let expires = expires_in.map(|seconds| unix_now().saturating_add(seconds));
    // An info URL (`_/{fingerprint}/info`, or a key with `info=1`) signs the info form; anything
    // else signs its recipe.
    let asset_info = path.strip_prefix("_/").and_then(|rest| rest.strip_suffix("/info"));
    let info = asset_info.is_some() || catg_core::info::asks_for_info(query)?;
    let form = if info {
        INFO_SIGNED_FORM.to_string()
    } else {
        Recipe::parse(query, &recipe_limits(process_env).map_err(config_failure)?).map_err(Error::from)?.signed_form()
    };
    let (sig, url_path) = match asset_info.or_else(|| path.strip_prefix("_/")) {
        Some(hex) => {
            let fingerprint: Fingerprint =
                hex.parse().map_err(|_| Failure::Failed(format!("{hex:?} is not a fingerprint (64 hex digits)")))?;
            let hex = fingerprint.to_hex();
            let suffix = if asset_info.is_some() { "/info" } else { "" };
            (keys.sign_form(SignedTarget::Asset(&hex), &form, expires), format!("_/{hex}{suffix}"))
        }
        None => {
            validate_key(path)?;
            let encoded: Vec<String> =
                path.split('/').map(|segment| utf8_percent_encode(segment, PATH_SEGMENT).to_string()).collect();
            (keys.sign_form(SignedTarget::Key(path), &form, expires), encoded.join("/"))
        }
    };
    let separator = if query.is_empty() { "" } else { "&" };
    let url = format!("{}/{url_path}?{query}{separator}{SIG_PARAM}={sig}", base_url.trim_end_matches('/'));
    Ok(json!({ "url": url, "sig": sig, "expires": expires }))
}

fn reconcile(source: &Path, data: &Path, dry_run: bool) -> Result<serde_json::Value, Failure> {
    if !data.join("catg.db").is_file() {
        return Err(Failure::Failed(format!("{} is not a catg data folder (no catg.db)", data.display())));
    }
    let mut config = catg_local::EmbeddedConfig::new(source, data);
    config.resolver.limits = image_limits(process_env).map_err(config_failure)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(config_failure)?;
    // A running count on a terminal: a large store takes a while (about 15,000 variants a second).
    let spinner = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    };
    let progress = |r: &catg_core::ReconcileReport| {
        spinner.set_message(format!(
            "reconciling: {} sources, {} variant records, {} variant objects checked",
            r.sources_listed, r.variants_checked, r.variant_objects_listed
        ));
        spinner.tick();
    };
    let report = runtime.block_on(async {
        let embedded = catg_local::Embedded::open(config).map_err(Error::from)?;
        embedded.reconcile(dry_run, &progress).await
    })?;
    spinner.finish_and_clear();
    serde_json::to_value(&report).map_err(config_failure)
}

fn report(
    stores: &StoreArgs,
    usage: catg_core::report::Usage,
    prices: Option<&Path>,
) -> Result<serde_json::Value, Failure> {
    use catg_core::report::{inventory, monthly_cost, Prices};
    let data = &stores.data;
    if !stores.aws && !data.join("catg.db").is_file() {
        return Err(Failure::Failed(format!("{} is not a catg data folder (no catg.db)", data.display())));
    }
    let prices: Prices = match prices {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::Failed(format!("cannot read {}: {e}", path.display())))?;
            serde_json::from_str(&text).map_err(|e| Failure::Failed(format!("{}: {e}", path.display())))?
        }
        None => Prices::default(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(config_failure)?;
    let inventory = runtime.block_on(async {
        if stores.aws {
            let deployed = deployed::stores().await.map_err(Failure::Failed)?;
            inventory(deployed.manifest.as_ref()).await.map_err(Failure::from)
        } else {
            let store =
                catg_local::SqliteStore::open(&data.join("catg.db")).map_err(|e| Failure::Failed(e.to_string()))?;
            inventory(&store).await.map_err(Failure::from)
        }
    })?;
    let cost = monthly_cost(&inventory, &usage, &prices);
    let saving = cost.pregenerated.total_usd - cost.on_demand.total_usd;
    Ok(json!({
        "inventory": inventory,
        "usage": usage,
        "prices": prices,
        "monthly_cost_usd": cost,
        "saving_vs_pregenerating_usd": (saving * 100.0).round() / 100.0,
    }))
}

/// Characters left as they are in a path segment: unreserved ones (RFC 3986).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn render(file: &Path, query: &str, accept: Option<&str>, output: &Path) -> Result<serde_json::Value, Failure> {
    let limits = image_limits(process_env).map_err(config_failure)?;
    let budget = RenderBudget::new(render_memory_mib(process_env).map_err(config_failure)?);
    let recipe = Recipe::parse(query, &recipe_limits(process_env).map_err(config_failure)?).map_err(Error::from)?;
    let mut examined = examine(open(file)?, file_size(file), &limits).map_err(Error::from)?;
    confirm_alpha_within(&mut examined, &limits, &budget)?;
    let probe = examined.verdict.map_err(Error::from)?;
    let body = examined.body.unwrap_or_default();
    let spec = recipe
        .resolve_animated(accept, probe.has_alpha, catg_image::is_animation(&probe), (probe.width(), probe.height()))
        .map_err(Error::from)?
        .render_spec();
    budget.admit(memory_estimate(&probe, &spec, body.len(), &limits)).map_err(Error::from)?;
    let variant = render_variant(&body, &examined.fingerprint, &probe, &recipe, accept, &limits)?;
    write_atomically(output, &variant.rendered.bytes)?;
    Ok(json!({
        "cache_key": variant.cache_key.to_hex(),
        "canonical": variant.recipe.canonical(),
        "format": variant.rendered.format.as_str(),
        "width": variant.rendered.width,
        "height": variant.rendered.height,
        "bytes": variant.rendered.bytes.len(),
    }))
}

/// Write beside the target and rename over it, so nobody ever sees half a variant.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let failed = |e: std::io::Error| Failure::Failed(format!("cannot write {}: {e}", path.display()));
    let name = path.file_name().ok_or_else(|| Failure::Failed(format!("{} is not a file path", path.display())))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map_err(failed)
}
