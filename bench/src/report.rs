//! The results of one harness run, the targets (issues 6 and 16) checked against them, and
//! their two renderings for people: the table printed on the terminal and
//! `docs/BENCHMARKS.md`.

use std::fmt::Write as _;

use crate::machine::Description;

/// Throughput and latency of one measured run (a server scenario or a baseline).
#[derive(Clone, Debug)]
pub struct Measured {
    pub label: String,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    /// Server CPU time per request, when the server is a separate process.
    pub cpu_micros_per_op: Option<f64>,
}

/// One scenario: the server's figures beside its baseline's.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Short name, also used in the chart.
    pub name: &'static str,
    pub unit: &'static str,
    pub connections: usize,
    pub server: Measured,
    pub baseline: Measured,
    /// The least `server / baseline` throughput the issue asks for, if any.
    pub target_ratio: Option<f64>,
}

impl Scenario {
    pub fn ratio(&self) -> f64 {
        self.server.per_second / self.baseline.per_second.max(f64::MIN_POSITIVE)
    }
}

/// Resident memory of one service.
#[derive(Clone, Debug)]
pub struct MemoryFigure {
    pub service: &'static str,
    pub idle_mib: f64,
    pub end_mib: f64,
    pub peak_mib: f64,
}

/// Spawn to the first 200 from `/health`.
#[derive(Clone, Debug)]
pub struct ColdStart {
    pub service: &'static str,
    /// On an empty database (migrations, and for the idp its first signing key).
    pub first_ms: f64,
    /// Every later start on the existing database.
    pub restarts_ms: Vec<f64>,
}

impl ColdStart {
    pub fn median_ms(&self) -> f64 {
        median(&self.restarts_ms)
    }
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Everything one run measured, and how it was run.
#[derive(Clone, Debug)]
pub struct Run {
    pub machine: Description,
    pub command: String,
    pub backend: &'static str,
    pub date: String,
    pub commit: String,
    pub seconds_per_scenario: f64,
    pub scenarios: Vec<Scenario>,
    /// `/users/me` paced below saturation, and the bare handler at the same rate.
    pub below_saturation: Option<Scenario>,
    pub memory: Vec<MemoryFigure>,
    pub cold_starts: Vec<ColdStart>,
    /// Sign-out to the resource server's first refusal (scenario 6).
    pub revocation: Option<crate::revocation::Latency>,
    /// CPU the load generator used per second of load, on average (cores).
    pub generator_cores: f64,
    /// CPU other processes on the machine used meanwhile, on average (cores).
    pub background_cores: f64,
}

/// The files one run writes: each backend has its own pair, so a PostgreSQL run does
/// not replace the SQLite figures (the default) or the other way round.
pub struct Files {
    pub markdown: &'static str,
    pub chart: &'static str,
    /// The other backend's name and report, linked from this one.
    pub other: (&'static str, &'static str),
}

pub const SQLITE: &str = "SQLite";
pub const POSTGRES: &str = "PostgreSQL";

/// Targets from issue 6.
pub const CLIENT_CREDENTIALS_RATIO: f64 = 0.80;
pub const CPU_PER_TOKEN_RATIO: f64 = 1.2;
pub const LOGIN_RATIO: f64 = 0.90;
pub const USERS_ME_RATIO: f64 = 0.40;
pub const USERS_ME_P99_MS: f64 = 5.0;
pub const IDLE_RSS_MIB: f64 = 30.0;
pub const LOAD_RSS_MIB: f64 = 60.0;
pub const COLD_START_MS: f64 = 300.0;
/// Targets from issue 16.
pub const REVOCATION_P99_MS: f64 = 1000.0;
pub const REVOCATIONS_RATIO: f64 = 0.95;

/// One figure held against its target.
#[derive(Clone, Debug)]
pub struct Check {
    pub figure: String,
    pub value: String,
    pub target: String,
    pub pass: bool,
}

impl Run {
    pub fn files(&self) -> Files {
        if self.backend == POSTGRES {
            Files {
                markdown: "BENCHMARKS-postgres.md",
                chart: "benchmarks-postgres.svg",
                other: (SQLITE, "BENCHMARKS.md"),
            }
        } else {
            Files {
                markdown: "BENCHMARKS.md",
                chart: "benchmarks.svg",
                other: (POSTGRES, "BENCHMARKS-postgres.md"),
            }
        }
    }

    /// Every figure with a target, in the order.
    pub fn checks(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        for s in &self.scenarios {
            if let Some(target) = s.target_ratio {
                checks.push(Check {
                    figure: format!("{} vs {}", s.server.label, s.baseline.label),
                    value: percent(s.ratio()),
                    target: format!("≥ {}", whole_percent(target)),
                    pass: s.ratio() >= target,
                });
            }
            if s.name == "client_credentials"
                && let (Some(server), Some(bare)) =
                    (s.server.cpu_micros_per_op, s.baseline.cpu_micros_per_op)
            {
                let ratio = server / bare.max(f64::MIN_POSITIVE);
                checks.push(Check {
                    figure: "CPU per token vs CPU per bare signature".to_owned(),
                    value: format!("{ratio:.2}× ({server:.0} µs vs {bare:.0} µs)"),
                    target: format!("≤ {CPU_PER_TOKEN_RATIO}×"),
                    pass: ratio <= CPU_PER_TOKEN_RATIO,
                });
            }
        }
        if let Some(s) = &self.below_saturation {
            checks.push(Check {
                figure: format!("{} p99", s.server.label),
                value: format!("{:.2} ms", s.server.p99_ms),
                target: format!("< {USERS_ME_P99_MS} ms"),
                pass: s.server.p99_ms < USERS_ME_P99_MS,
            });
        }
        if let Some(r) = &self.revocation {
            checks.push(Check {
                figure: format!(
                    "sign-out to the resource server's first refusal, p99 of {}",
                    r.rounds
                ),
                value: format!(
                    "{:.1} ms (p50 {:.1} ms, max {:.1} ms)",
                    r.p99_ms, r.p50_ms, r.max_ms
                ),
                target: format!("< {REVOCATION_P99_MS:.0} ms"),
                pass: r.p99_ms < REVOCATION_P99_MS,
            });
        }
        for m in &self.memory {
            checks.push(Check {
                figure: format!("{} RSS idle", m.service),
                value: mib(m.idle_mib),
                target: format!("≤ {}", mib(IDLE_RSS_MIB)),
                pass: m.idle_mib <= IDLE_RSS_MIB,
            });
            checks.push(Check {
                figure: format!("{} RSS peak under load", m.service),
                value: format!("{} (at the end: {})", mib(m.peak_mib), mib(m.end_mib)),
                target: format!("≤ {}", mib(LOAD_RSS_MIB)),
                pass: m.peak_mib <= LOAD_RSS_MIB,
            });
        }
        for c in &self.cold_starts {
            checks.push(Check {
                figure: format!(
                    "{} cold start (median of {})",
                    c.service,
                    c.restarts_ms.len()
                ),
                value: format!("{:.0} ms", c.median_ms()),
                target: format!("< {COLD_START_MS:.0} ms"),
                pass: c.median_ms() < COLD_START_MS,
            });
        }
        checks
    }

    /// The terminal table.
    pub fn print(&self) {
        println!();
        println!(
            "backend: {}, {} cores ({}), {:.0} s per scenario; the load generator used {:.2} \
             cores, other processes {:.2} cores on average",
            self.backend,
            self.machine.cores,
            self.machine.cpu,
            self.seconds_per_scenario,
            self.generator_cores,
            self.background_cores
        );
        println!();
        println!("{}", self.scenario_table(false));
        println!("{}", self.checks_table(false));
        println!("{}", self.resources_table(false));
    }

    fn scenario_rows(&self) -> Vec<[String; 10]> {
        let mut rows = Vec::new();
        let all = self.scenarios.iter().chain(self.below_saturation.iter());
        for s in all {
            for (m, is_baseline) in [(&s.server, false), (&s.baseline, true)] {
                rows.push([
                    if is_baseline {
                        format!("  baseline: {}", m.label)
                    } else {
                        m.label.clone()
                    },
                    if is_baseline {
                        String::new()
                    } else {
                        s.connections.to_string()
                    },
                    format!("{} {}", thousands(m.per_second), s.unit),
                    format!("{:.2} ms", m.p50_ms),
                    format!("{:.2} ms", m.p99_ms),
                    m.errors.to_string(),
                    m.cpu_micros_per_op
                        .map_or_else(String::new, |c| format!("{c:.0} µs")),
                    if is_baseline {
                        String::new()
                    } else {
                        percent(s.ratio())
                    },
                    if is_baseline {
                        String::new()
                    } else {
                        s.target_ratio
                            .map_or_else(String::new, |t| format!("≥ {}", whole_percent(t)))
                    },
                    if is_baseline {
                        String::new()
                    } else {
                        s.target_ratio
                            .map_or_else(String::new, |t| pass_miss(s.ratio() >= t).to_owned())
                    },
                ]);
            }
        }
        rows
    }

    fn scenario_table(&self, markdown: bool) -> String {
        table(
            &[
                "scenario",
                "connections",
                "rate",
                "p50",
                "p99",
                "errors",
                "CPU/op",
                "ratio",
                "target",
                "",
            ],
            &self.scenario_rows(),
            markdown,
        )
    }

    fn checks_table(&self, markdown: bool) -> String {
        let rows: Vec<[String; 4]> = self
            .checks()
            .into_iter()
            .map(|c| [c.figure, c.value, c.target, pass_miss(c.pass).to_owned()])
            .collect();
        table(&["figure", "measured", "target", "result"], &rows, markdown)
    }

    fn resources_table(&self, markdown: bool) -> String {
        let mut rows: Vec<[String; 6]> = Vec::new();
        for m in &self.memory {
            let cold = self.cold_starts.iter().find(|c| c.service == m.service);
            rows.push([
                m.service.to_owned(),
                mib(m.idle_mib),
                mib(m.end_mib),
                mib(m.peak_mib),
                cold.map_or_else(String::new, |c| {
                    format!(
                        "{:.0} ms ({})",
                        c.median_ms(),
                        c.restarts_ms
                            .iter()
                            .map(|v| format!("{v:.0}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }),
                cold.map_or_else(String::new, |c| format!("{:.0} ms", c.first_ms)),
            ]);
        }
        table(
            &[
                "service",
                "RSS idle",
                "RSS at end of load",
                "RSS peak",
                "cold start, median (each run)",
                "first start (empty database)",
            ],
            &rows,
            markdown,
        )
    }

    /// `docs/BENCHMARKS.md`.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let files = self.files();
        let _ = writeln!(md, "# Benchmarks on {}\n", self.backend);
        let _ = writeln!(
            md,
            "Generated by the benchmark harness (`bench/`); do not edit by hand, run it again. \
             Every figure is a ratio to a baseline measured in the same run on the same \
             cores, so it means something on a noisy, shared machine. [benchmarking.md](benchmarking.md) \
             says how to run it and what each ratio means. \
             The same run on {}: [{}]({}).\n",
            files.other.0, files.other.1, files.other.1
        );
        let _ = writeln!(md, "| | |\n| --- | --- |");
        let _ = writeln!(md, "| command | `{}` |", self.command);
        let _ = writeln!(md, "| backend | {} |", self.backend);
        let _ = writeln!(md, "| date | {} |", self.date);
        let _ = writeln!(md, "| commit | `{}` |", self.commit);
        let _ = writeln!(
            md,
            "| machine | {} cores of {}, {:.1} GiB memory, Linux {} |",
            m.cores, m.cpu, m.memory_gib, m.kernel
        );
        let _ = writeln!(
            md,
            "| per scenario | {:.0} s of load after a warm-up; cold starts: median of {} starts |",
            self.seconds_per_scenario,
            self.cold_starts.first().map_or(0, |c| c.restarts_ms.len())
        );
        let _ = writeln!(
            md,
            "| load generator | in the harness: closed loop, keep-alive HTTP/1.1 (hyper), one thread; used {:.2} cores on average while loading, on the same {} cores as the server (nothing is pinned) |",
            self.generator_cores, m.cores
        );
        let _ = writeln!(
            md,
            "| other load | {:.2} cores on average were busy with other processes while the services were under load (from `/proc/stat`; the machine is shared) |",
            self.background_cores
        );
        let _ = writeln!(
            md,
            "\n![Throughput and latency per scenario]({})\n",
            files.chart
        );
        let _ = writeln!(md, "## Against the targets\n");
        let _ = writeln!(md, "{}", self.checks_table(true));
        let _ = writeln!(md, "## Throughput and latency\n");
        let _ = writeln!(
            md,
            "Each scenario, then its baseline. Rates are per second, latencies per request \
             (for a bare baseline: per operation). CPU/op is the service process's CPU time \
             (user + system, from `/proc/PID/stat`) per request; for a bare baseline, the \
             harness's CPU per operation.\n"
        );
        let _ = writeln!(md, "{}", self.scenario_table(true));
        let _ = writeln!(md, "## Memory and start-up\n");
        let _ = writeln!(
            md,
            "Resident memory (`VmRSS`, peak `VmHWM`, from `/proc/PID/status`): idle is \
             one second after the service is healthy, before any load; the peak covers \
             every scenario. A cold start is the time from spawning the process to the \
             first 200 from `GET /health`, on a database that already exists; the first \
             start on an empty one also runs the migrations (and the idp makes its first \
             RSA key).\n"
        );
        let _ = writeln!(md, "{}", self.resources_table(true));
        let _ = writeln!(md, "## What limits each figure\n");
        let _ = writeln!(md, "{}", crate::notes::NOTES.trim());
        md
    }
}

fn pass_miss(pass: bool) -> &'static str {
    if pass { "pass" } else { "MISS" }
}

/// A target: `80 %`.
fn whole_percent(ratio: f64) -> String {
    format!("{:.0} %", ratio * 100.0)
}

/// A measured ratio, with a decimal so that 79.6 % does not read as a met 80 %.
pub fn percent(ratio: f64) -> String {
    format!("{:.1} %", ratio * 100.0)
}

fn mib(v: f64) -> String {
    format!("{v:.1} MiB")
}

/// `12,345` (whole numbers), or one decimal under 100.
pub fn thousands(v: f64) -> String {
    if v < 100.0 {
        return format!("{v:.1}");
    }
    let digits = format!("{:.0}", v);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A plain-text table (columns padded) or a Markdown one.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]], markdown: bool) -> String {
    let mut out = String::new();
    if markdown {
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let _ = writeln!(
            out,
            "|{}",
            header.iter().map(|_| " --- |").collect::<String>()
        );
        for row in rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        return out;
    }
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for row in rows {
        let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_for_people() {
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(12.34), "12.3");
        assert_eq!(percent(0.7964), "79.6 %");
        assert_eq!(whole_percent(0.8), "80 %");
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
