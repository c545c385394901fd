//! The one SVG writer of the project: report figures ([`crate::report`]), training-run plots and
//! scaling-law plots (`modrl_train`) all draw through [`Svg`] on a [`Frame`], with the tick and
//! number formatting here. Drawn by hand rather than with a plotting crate: the output is small,
//! self-contained SVG text that inlines into HTML opened from `file://` (no fonts, scripts or
//! external CSS), byte-stable for tests, and needs no native font or image libraries on the
//! 2-core CI machines; plotters' SVG backend would bring font handling we do not use.

use std::fmt::Write as _;

// Formatting helpers.

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a Markdown table cell.
/// Coordinates with one decimal keep the SVG small.
pub fn c(v: f64) -> String {
    let v = if v.is_finite() { v } else { 0.0 };
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map_or(s.clone(), str::to_string)
}

pub fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        ((-step.log10()).ceil() as usize).min(4)
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

pub fn nice_step(max: f64, target: usize) -> f64 {
    if !max.is_finite() || max <= 0.0 {
        return 0.2;
    }
    let raw = max / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let m = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 2.5 {
        2.5
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

pub fn ticks(max: f64, step: f64) -> Vec<f64> {
    let n = (max / step).round() as usize;
    (0..=n).map(|i| i as f64 * step).collect()
}

// ---------------------------------------------------------------------------------------------
// A tiny SVG writer.

pub const BLUE: &str = "#0072B2";
pub const ORANGE: &str = "#E69F00";
pub const VERMILLION: &str = "#D55E00";
pub const GREY: &str = "#666666";
pub const GRID: &str = "#e5e5e5";
pub const FONT: &str = "Helvetica, Arial, 'Liberation Sans', 'DejaVu Sans', sans-serif";

/// The plot area in pixels and the data ranges it shows.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub x0: f64,
    pub y0: f64,
    pub w: f64,
    pub h: f64,
    pub xr: (f64, f64),
    pub yr: (f64, f64),
}

impl Frame {
    pub fn x(&self, v: f64) -> f64 {
        self.x0 + (v - self.xr.0) / (self.xr.1 - self.xr.0) * self.w
    }

    pub fn y(&self, v: f64) -> f64 {
        self.y0 + self.h - (v - self.yr.0) / (self.yr.1 - self.yr.0) * self.h
    }

    pub fn bottom(&self) -> f64 {
        self.y0 + self.h
    }

    pub fn right(&self) -> f64 {
        self.x0 + self.w
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    Line {
        color: &'a str,
        dash: Option<&'a str>,
    },
    Dot {
        color: &'a str,
    },
    Swatch {
        color: &'a str,
    },
}

#[derive(Debug, Clone, Copy)]
pub enum Corner {
    TopLeft,
    TopCenter,
    BottomLeft,
    BottomRight,
}

pub struct Svg {
    pub w: f64,
    pub h: f64,
    pub title: String,
    pub body: String,
}

impl Svg {
    pub fn new(w: f64, h: f64, title: &str) -> Svg {
        let mut s = Svg {
            w,
            h,
            title: title.to_string(),
            body: String::new(),
        };
        let _ = write!(
            s.body,
            r##"<rect x="0" y="0" width="{}" height="{}" fill="#ffffff"/>"##,
            c(w),
            c(h)
        );
        s.text(
            w / 2.0,
            22.0,
            title,
            15.0,
            "middle",
            r#"font-weight="bold""#,
        );
        s
    }

    /// An empty white canvas without the title line (the caller lays out its own heading); the
    /// title still names the figure for screen readers.
    pub fn blank(w: f64, h: f64, title: &str) -> Svg {
        let mut s = Svg {
            w,
            h,
            title: title.to_string(),
            body: String::new(),
        };
        s.rect(0.0, 0.0, w, h, "#ffffff", "");
        s
    }

    /// [`Svg::dot`] with a tooltip.
    pub fn dot_titled(&mut self, x: f64, y: f64, r: f64, fill: &str, title: &str) {
        let _ = write!(
            self.body,
            r##"<circle cx="{}" cy="{}" r="{}" fill="{fill}" stroke="#ffffff" stroke-width="1"><title>{}</title></circle>"##,
            c(x),
            c(y),
            c(r),
            esc(title)
        );
    }

    /// A filled circle without outline (a data marker).
    pub fn marker(&mut self, x: f64, y: f64, r: f64, fill: &str) {
        let _ = write!(
            self.body,
            r#"<circle cx="{}" cy="{}" r="{}" fill="{fill}" stroke="none"/>"#,
            c(x),
            c(y),
            c(r)
        );
    }

    /// Start a group clipped to the frame's plot area (`id` unique in the document); close it with
    /// [`Svg::end_clip`].
    pub fn begin_clip(&mut self, id: &str, f: &Frame) {
        let _ = write!(
            self.body,
            r#"<clipPath id="{id}"><rect x="{}" y="{}" width="{}" height="{}"/></clipPath><g clip-path="url(#{id})">"#,
            c(f.x0),
            c(f.y0),
            c(f.w),
            c(f.h)
        );
    }

    pub fn end_clip(&mut self) {
        self.body.push_str("</g>");
    }

    pub fn text(&mut self, x: f64, y: f64, s: &str, size: f64, anchor: &str, extra: &str) {
        let _ = write!(
            self.body,
            r#"<text x="{}" y="{}" font-size="{}" text-anchor="{anchor}" {extra}>{}</text>"#,
            c(x),
            c(y),
            c(size),
            esc(s)
        );
    }

    pub fn line(
        &mut self,
        (x1, y1): (f64, f64),
        (x2, y2): (f64, f64),
        stroke: &str,
        width: f64,
        dash: Option<&str>,
    ) {
        let dash = dash.map_or_else(String::new, |d| format!(r#" stroke-dasharray="{d}""#));
        let _ = write!(
            self.body,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{stroke}" stroke-width="{}"{dash}/>"#,
            c(x1),
            c(y1),
            c(x2),
            c(y2),
            c(width)
        );
    }

    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, extra: &str) {
        let _ = write!(
            self.body,
            r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{fill}" {extra}/>"#,
            c(x),
            c(y),
            c(w.max(0.0)),
            c(h.max(0.0))
        );
    }

    pub fn path(&mut self, d: &str, stroke: &str, width: f64, fill: &str, extra: &str) {
        let _ = write!(
            self.body,
            r#"<path d="{d}" stroke="{stroke}" stroke-width="{}" fill="{fill}" stroke-linejoin="round" {extra}/>"#,
            c(width)
        );
    }

    pub fn dot(&mut self, x: f64, y: f64, r: f64, fill: &str) {
        let _ = write!(
            self.body,
            r##"<circle cx="{}" cy="{}" r="{}" fill="{fill}" stroke="#ffffff" stroke-width="1"/>"##,
            c(x),
            c(y),
            c(r)
        );
    }

    /// Grid, frame, ticks with labels and axis labels.
    pub fn axes(
        &mut self,
        f: &Frame,
        xt: (&[f64], f64),
        yt: (&[f64], f64),
        xlabel: &str,
        ylabel: &str,
    ) {
        for &t in xt.0 {
            let x = f.x(t);
            self.line((x, f.y0), (x, f.bottom()), GRID, 1.0, None);
            self.line((x, f.bottom()), (x, f.bottom() + 5.0), "#333333", 1.0, None);
            self.text(
                x,
                f.bottom() + 18.0,
                &tick_label(t, xt.1),
                11.0,
                "middle",
                "",
            );
        }
        for &t in yt.0 {
            let y = f.y(t);
            self.line((f.x0, y), (f.right(), y), GRID, 1.0, None);
            self.line((f.x0 - 5.0, y), (f.x0, y), "#333333", 1.0, None);
            self.text(f.x0 - 8.0, y + 4.0, &tick_label(t, yt.1), 11.0, "end", "");
        }
        self.rect(
            f.x0,
            f.y0,
            f.w,
            f.h,
            "none",
            r##"stroke="#333333" stroke-width="1""##,
        );
        self.text(
            f.x0 + f.w / 2.0,
            f.bottom() + 38.0,
            xlabel,
            12.5,
            "middle",
            "",
        );
        let (lx, ly) = (16.0, f.y0 + f.h / 2.0);
        self.text(
            lx,
            ly,
            ylabel,
            12.5,
            "middle",
            &format!(r#"transform="rotate(-90 {} {})""#, c(lx), c(ly)),
        );
    }

    pub fn legend(&mut self, f: &Frame, entries: &[(Key<'_>, String)], corner: Corner) {
        if entries.is_empty() {
            return;
        }
        let row = 18.0;
        let longest = entries
            .iter()
            .map(|(_, s)| s.chars().count())
            .max()
            .unwrap_or(0) as f64;
        let w = 40.0 + longest * 6.6;
        let h = 8.0 + row * entries.len() as f64;
        let pad = 8.0;
        let (x, y) = match corner {
            Corner::TopLeft => (f.x0 + pad, f.y0 + pad),
            Corner::TopCenter => (f.x0 + (f.w - w) / 2.0, f.y0 + pad),
            Corner::BottomLeft => (f.x0 + pad, f.bottom() - pad - h),
            Corner::BottomRight => (f.right() - pad - w, f.bottom() - pad - h),
        };
        self.rect(
            x,
            y,
            w,
            h,
            "#ffffff",
            r##"fill-opacity="0.9" stroke="#bbbbbb" stroke-width="0.8" rx="3""##,
        );
        for (i, (key, label)) in entries.iter().enumerate() {
            let cy = y + 4.0 + row * (i as f64 + 0.5);
            match *key {
                Key::Line { color, dash } => {
                    self.line((x + 8.0, cy), (x + 28.0, cy), color, 2.2, dash)
                }
                Key::Dot { color } => self.dot(x + 18.0, cy, 4.5, color),
                Key::Swatch { color } => self.rect(
                    x + 10.0,
                    cy - 6.0,
                    16.0,
                    12.0,
                    color,
                    &format!(r#"fill-opacity="0.45" stroke="{color}" stroke-width="1.2""#),
                ),
            }
            self.text(x + 34.0, cy + 4.0, label, 11.5, "start", "");
        }
    }

    pub fn note(&mut self, f: &Frame, s: &str) {
        self.text(
            f.x0 + f.w / 2.0,
            f.y0 + f.h / 2.0,
            s,
            13.0,
            "middle",
            &format!(r#"fill="{GREY}""#),
        );
    }

    /// The finished SVG; `standalone` adds the namespace a `.svg` file needs (inline SVG in HTML
    /// does without it).
    pub fn finish(self, standalone: bool) -> String {
        let ns = if standalone {
            r#" xmlns="http://www.w3.org/2000/svg""#
        } else {
            ""
        };
        format!(
            r##"<svg{ns} viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}" font-family="{FONT}" fill="#222222"><title>{t}</title>{body}</svg>"##,
            w = c(self.w),
            h = c(self.h),
            t = esc(&self.title),
            body = self.body
        ) + if standalone { "\n" } else { "" }
    }
}

// ---------------------------------------------------------------------------------------------
// Axes over any range (training curves, scaling plots).

/// "Nice" tick positions (1, 2, 5 x 10^k steps) inside `[lo, hi]`, about `target` of them.
/// `min_step` bounds the step from below (1 for integer steps).
pub fn nice_ticks(lo: f64, hi: f64, target: usize, min_step: f64) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let step = tick_step(lo, hi, target).max(min_step);
    let first = (lo / step).ceil();
    let last = (hi / step).floor();
    let mut ticks = Vec::new();
    let mut i = first;
    while i <= last && ticks.len() < 100 {
        let v = i * step;
        // Snap tiny rounding residue (e.g. 2.7e-17) to 0.
        ticks.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        i += 1.0;
    }
    ticks
}

pub fn tick_step(lo: f64, hi: f64, target: usize) -> f64 {
    let raw = (hi - lo) / (target.max(2) - 1) as f64;
    let exp = raw.log10().floor();
    let base = 10f64.powf(exp);
    let f = raw / base;
    let nf = if f < 1.5 {
        1.0
    } else if f < 3.0 {
        2.0
    } else if f < 7.0 {
        5.0
    } else {
        10.0
    };
    nf * base
}

/// Labels for a set of ticks, with just enough decimals to tell neighbours apart; scientific
/// notation for very small or very large magnitudes, `k`/`M` suffixes for thousands/millions.
pub fn tick_labels(ticks: &[f64]) -> Vec<String> {
    if ticks.is_empty() {
        return Vec::new();
    }
    let step = if ticks.len() > 1 {
        (ticks[1] - ticks[0]).abs()
    } else {
        ticks[0].abs().max(1.0)
    };
    let max_abs = ticks.iter().fold(0.0f64, |m, t| m.max(t.abs()));
    let digits = |x: f64| x.log10().floor() as i32;
    if max_abs > 0.0 && !(1e-3..1e9).contains(&max_abs) {
        let prec = (digits(max_abs) - digits(step)).clamp(0, 6) as usize;
        return ticks
            .iter()
            .map(|&t| {
                if t == 0.0 {
                    "0".to_string()
                } else {
                    format!("{t:.prec$e}")
                }
            })
            .collect();
    }
    let (div, suffix) = if max_abs >= 1e6 {
        (1e6, "M")
    } else if max_abs >= 1e4 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let prec = (-digits(step / div)).clamp(0, 9) as usize;
    ticks
        .iter()
        .map(|&t| {
            let s = format!("{:.prec$}", t / div);
            if s.trim_start_matches('-')
                .chars()
                .all(|c| c == '0' || c == '.')
            {
                // No "-0.0"; and no suffix on zero.
                s.trim_start_matches('-').to_string()
            } else {
                format!("{s}{suffix}")
            }
        })
        .collect()
}

/// Rough width of `s` in pixels at `font_size` (sans-serif averages ~0.6 em per character).
pub fn text_width(s: &str, font_size: f64) -> f64 {
    s.chars().count() as f64 * font_size * 0.6
}

/// Line colours of one series per run (matplotlib's tab10), used in order.
pub const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];
