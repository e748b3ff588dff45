//! `docs/benchmarks.svg` (`benchmarks-postgres.svg`): six small bar charts, each
//! scenario beside its baseline, with the targets of issue 6 drawn in, so the picture
//! reads at a glance.

use std::path::Path;

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordi32;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::{self, Run};

const SERVICE: RGBColor = RGBColor(31, 119, 180);
const SERVICE_LIGHT: RGBColor = RGBColor(140, 190, 225);
const BASELINE: RGBColor = RGBColor(150, 150, 150);
const BASELINE_LIGHT: RGBColor = RGBColor(205, 205, 205);
const PASS: RGBColor = RGBColor(44, 160, 44);
const MISS: RGBColor = RGBColor(214, 39, 40);
const INFO: RGBColor = RGBColor(120, 120, 120);
const TARGET: RGBColor = RGBColor(214, 39, 40);

/// Width of one category on the x axis, in chart units; bars share it.
const GROUP: i32 = 20;

/// One bar per category.
struct Series {
    name: String,
    colors: Vec<RGBColor>,
    values: Vec<Option<f64>>,
}

impl Series {
    fn new(name: &str, color: RGBColor, values: Vec<Option<f64>>) -> Self {
        Self {
            name: name.to_owned(),
            colors: vec![color; values.len()],
            values,
        }
    }
}

struct Panel<'a> {
    title: &'a str,
    y_desc: &'a str,
    groups: Vec<String>,
    series: Vec<Series>,
    log: bool,
    /// A target per category (a short dashed line across it).
    markers: Vec<Option<f64>>,
    /// Targets across the whole panel: value and label.
    lines: Vec<(f64, String)>,
    /// How to print a value above its bar.
    format: fn(f64) -> String,
}

pub fn write(run: &Run, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1200, 1260)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
    let (title, body) = root.split_vertically(60);
    title
        .draw(&Text::new(
            format!(
                "idp benchmarks: {} backend, {} cores, {:.0} s per scenario ({})",
                run.backend, run.machine.cores, run.seconds_per_scenario, run.date
            ),
            (20, 20),
            ("sans-serif", 22).into_font(),
        ))
        .map_err(|e| anyhow!("{e:?}"))?;
    let areas = body.split_evenly((3, 2));
    let panels = panels(run);
    for (area, panel) in areas.iter().zip(panels.iter()) {
        draw(area, panel).map_err(|e| anyhow!("Failed to draw {}: {e}", panel.title))?;
    }
    root.present().map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}

fn short(name: &str) -> String {
    match name {
        "client_credentials" => "POST /token (cc)".to_owned(),
        "login" => "POST /auth/login".to_owned(),
        "/users/me at half load" => "/users/me, half load".to_owned(),
        "discovery" => "discovery".to_owned(),
        other => other.to_owned(),
    }
}

fn panels(run: &Run) -> Vec<Panel<'static>> {
    let scenarios = &run.scenarios;
    let names: Vec<String> = scenarios.iter().map(|s| short(s.name)).collect();
    let ratio_colors = scenarios
        .iter()
        .map(|s| match s.target_ratio {
            Some(t) if s.ratio() >= t => PASS,
            Some(_) => MISS,
            None => INFO,
        })
        .collect();
    let ratio = Panel {
        title: "Throughput as a share of its baseline",
        y_desc: "% of baseline",
        groups: names.clone(),
        series: vec![Series {
            name: "service ÷ baseline (green: target met, red: missed)".to_owned(),
            colors: ratio_colors,
            values: scenarios.iter().map(|s| Some(s.ratio() * 100.0)).collect(),
        }],
        log: false,
        markers: scenarios
            .iter()
            .map(|s| s.target_ratio.map(|t| t * 100.0))
            .collect(),
        lines: vec![],
        format: |v| format!("{v:.1} %"),
    };
    let throughput = Panel {
        title: "Throughput (per second, log scale)",
        y_desc: "requests or operations / s",
        groups: names.clone(),
        series: vec![
            Series::new(
                "service",
                SERVICE,
                scenarios
                    .iter()
                    .map(|s| Some(s.server.per_second))
                    .collect(),
            ),
            Series::new(
                "baseline (bare signing, Argon2id, axum hello)",
                BASELINE,
                scenarios
                    .iter()
                    .map(|s| Some(s.baseline.per_second))
                    .collect(),
            ),
        ],
        log: true,
        markers: vec![],
        lines: vec![],
        format: report::thousands,
    };
    let mut latency_scenarios: Vec<&report::Scenario> = scenarios.iter().collect();
    latency_scenarios.extend(run.below_saturation.iter());
    let latency = Panel {
        title: "Latency p50 and p99 (ms, log scale)",
        y_desc: "ms",
        groups: latency_scenarios.iter().map(|s| short(s.name)).collect(),
        series: vec![
            Series::new(
                "service p50",
                SERVICE_LIGHT,
                latency_scenarios
                    .iter()
                    .map(|s| Some(s.server.p50_ms))
                    .collect(),
            ),
            Series::new(
                "service p99",
                SERVICE,
                latency_scenarios
                    .iter()
                    .map(|s| Some(s.server.p99_ms))
                    .collect(),
            ),
            Series::new(
                "baseline p50",
                BASELINE_LIGHT,
                latency_scenarios
                    .iter()
                    .map(|s| Some(s.baseline.p50_ms))
                    .collect(),
            ),
            Series::new(
                "baseline p99",
                BASELINE,
                latency_scenarios
                    .iter()
                    .map(|s| Some(s.baseline.p99_ms))
                    .collect(),
            ),
        ],
        log: true,
        markers: latency_scenarios
            .iter()
            .map(|s| (s.name == "/users/me at half load").then_some(report::USERS_ME_P99_MS))
            .collect(),
        lines: vec![],
        format: |v| {
            if v < 1.0 {
                format!("{v:.2}")
            } else {
                format!("{v:.1}")
            }
        },
    };
    let cpu_scenarios: Vec<&report::Scenario> = scenarios
        .iter()
        .filter(|s| s.baseline.cpu_micros_per_op.is_some())
        .collect();
    let cpu = Panel {
        title: "CPU time per request vs per bare operation (µs)",
        y_desc: "µs of CPU",
        groups: cpu_scenarios.iter().map(|s| short(s.name)).collect(),
        series: vec![
            Series::new(
                "service process, per request",
                SERVICE,
                cpu_scenarios
                    .iter()
                    .map(|s| s.server.cpu_micros_per_op)
                    .collect(),
            ),
            Series::new(
                "bare operation",
                BASELINE,
                cpu_scenarios
                    .iter()
                    .map(|s| s.baseline.cpu_micros_per_op)
                    .collect(),
            ),
        ],
        log: true,
        markers: cpu_scenarios
            .iter()
            .map(|s| {
                (s.name == "client_credentials")
                    .then(|| {
                        s.baseline
                            .cpu_micros_per_op
                            .map(|b| b * report::CPU_PER_TOKEN_RATIO)
                    })
                    .flatten()
            })
            .collect(),
        lines: vec![],
        format: |v| format!("{v:.0}"),
    };
    let memory = Panel {
        title: "Resident memory (MiB)",
        y_desc: "MiB",
        groups: run.memory.iter().map(|m| m.service.to_owned()).collect(),
        series: vec![
            Series::new(
                "idle",
                SERVICE_LIGHT,
                run.memory.iter().map(|m| Some(m.idle_mib)).collect(),
            ),
            Series::new(
                "end of load",
                SERVICE,
                run.memory.iter().map(|m| Some(m.end_mib)).collect(),
            ),
            Series::new(
                "peak",
                RGBColor(20, 60, 110),
                run.memory.iter().map(|m| Some(m.peak_mib)).collect(),
            ),
        ],
        log: false,
        markers: vec![],
        lines: vec![
            (report::IDLE_RSS_MIB, "idle target".to_owned()),
            (report::LOAD_RSS_MIB, "under-load target".to_owned()),
        ],
        format: |v| format!("{v:.1}"),
    };
    let cold = Panel {
        title: "Start to healthy (ms)",
        y_desc: "ms",
        groups: run
            .cold_starts
            .iter()
            .map(|c| c.service.to_owned())
            .collect(),
        series: vec![
            Series::new(
                "cold start, median",
                SERVICE,
                run.cold_starts
                    .iter()
                    .map(|c| Some(c.median_ms()))
                    .collect(),
            ),
            Series::new(
                "first start, empty database",
                BASELINE,
                run.cold_starts.iter().map(|c| Some(c.first_ms)).collect(),
            ),
        ],
        log: false,
        markers: vec![],
        lines: vec![(report::COLD_START_MS, "target".to_owned())],
        format: |v| format!("{v:.0}"),
    };
    vec![ratio, throughput, latency, cpu, memory, cold]
}

fn draw(area: &DrawingArea<SVGBackend<'_>, Shift>, panel: &Panel<'_>) -> anyhow::Result<()> {
    let groups = i32::try_from(panel.groups.len().max(1))?;
    let values = panel
        .series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .chain(panel.markers.iter().flatten())
        .chain(panel.lines.iter().map(|(v, _)| v))
        .copied()
        .filter(|v| v.is_finite() && *v > 0.0);
    let (lo, hi) = values.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let hi = if hi > 0.0 { hi } else { 1.0 };
    let names = panel.groups.clone();
    let label = move |x: &i32| -> String {
        if x.rem_euclid(GROUP) == GROUP / 2 {
            names
                .get(usize::try_from(x / GROUP).unwrap_or(usize::MAX))
                .cloned()
                .unwrap_or_default()
        } else {
            String::new()
        }
    };
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(panel.title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(60)
        .set_label_area_size(LabelAreaPosition::Bottom, 28);
    let x_range = 0..groups * GROUP;
    if panel.log {
        let lo = (lo.min(hi) / 3.0).max(1e-3);
        let mut chart = builder
            .build_cartesian_2d(x_range, (lo..hi * 6.0).log_scale())
            .map_err(|e| anyhow!("{e:?}"))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(usize::try_from(groups * GROUP + 1)?)
            .x_label_formatter(&label)
            .y_desc(panel.y_desc)
            .y_label_formatter(&|v| report::thousands(*v))
            .light_line_style(TRANSPARENT)
            .label_style(("sans-serif", 12))
            .set_tick_mark_size(LabelAreaPosition::Bottom, 0)
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
        bars(&mut chart, panel, lo)?;
    } else {
        let mut chart = builder
            .build_cartesian_2d(x_range, 0.0..hi * 1.4)
            .map_err(|e| anyhow!("{e:?}"))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(usize::try_from(groups * GROUP + 1)?)
            .x_label_formatter(&label)
            .y_desc(panel.y_desc)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .light_line_style(TRANSPARENT)
            .label_style(("sans-serif", 12))
            .set_tick_mark_size(LabelAreaPosition::Bottom, 0)
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
        bars(&mut chart, panel, 0.0)?;
    }
    Ok(())
}

fn bars<'a, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordi32, Y>>,
    panel: &Panel<'_>,
    floor: f64,
) -> anyhow::Result<()>
where
    Y: Ranged<ValueType = f64>,
{
    let n = i32::try_from(panel.series.len().max(1))?;
    let bar = (GROUP - 4) / n;
    let value_style =
        TextStyle::from(("sans-serif", 11).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    for (si, series) in panel.series.iter().enumerate() {
        let si = i32::try_from(si)?;
        let mut rects = Vec::new();
        let mut texts = Vec::new();
        for (gi, (value, color)) in series.values.iter().zip(&series.colors).enumerate() {
            let Some(value) = value.filter(|v| v.is_finite()) else {
                continue;
            };
            let x0 = i32::try_from(gi)? * GROUP + 2 + si * bar;
            rects.push(Rectangle::new(
                [(x0, floor), (x0 + bar, value.max(floor))],
                color.filled(),
            ));
            texts.push(Text::new(
                (panel.format)(value),
                (x0 + bar / 2, value.max(floor)),
                value_style.clone(),
            ));
        }
        let color = series.colors.first().copied().unwrap_or(SERVICE);
        chart
            .draw_series(rects)
            .map_err(|e| anyhow!("{e:?}"))?
            .label(series.name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        chart.draw_series(texts).map_err(|e| anyhow!("{e:?}"))?;
    }
    let mut marked = false;
    for (gi, marker) in panel.markers.iter().enumerate() {
        let Some(target) = marker else { continue };
        let x0 = i32::try_from(gi)? * GROUP;
        let series = chart
            .draw_series(DashedLineSeries::new(
                [(x0 + 1, *target), (x0 + GROUP - 1, *target)],
                6,
                4,
                TARGET.stroke_width(2),
            ))
            .map_err(|e| anyhow!("{e:?}"))?;
        if !marked {
            series
                .label("target")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 12, y)], TARGET.stroke_width(2)));
            marked = true;
        }
    }
    let x_end = i32::try_from(panel.groups.len())? * GROUP;
    for (value, name) in &panel.lines {
        chart
            .draw_series(DashedLineSeries::new(
                [(0, *value), (x_end, *value)],
                6,
                4,
                TARGET.stroke_width(2),
            ))
            .map_err(|e| anyhow!("{e:?}"))?;
        chart
            .draw_series([Text::new(
                format!("{name}: {}", (panel.format)(*value)),
                (1, *value),
                ("sans-serif", 11)
                    .into_font()
                    .color(&TARGET)
                    .pos(Pos::new(HPos::Left, VPos::Bottom)),
            )])
            .map_err(|e| anyhow!("{e:?}"))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 11))
        .draw()
        .map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}
