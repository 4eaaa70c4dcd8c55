//! The report's figures, drawn with plotters' SVG backend into strings.
//!
//! Text is written as SVG `<text>` and laid out by the browser (no font files are read). Heatmaps
//! are raster images (PNG, one pixel per cell) inside the SVG, drawn unsmoothed by the browser.

use base64::Engine as _;
use plotters::prelude::*;

/// A figure-drawing error, boxed (plotters' errors are generic over the backend).
pub type PlotResult<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Ten distinguishable colours (matplotlib's tab10).
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Light grey for points outside the palette.
pub const OTHER: RGBColor = RGBColor(200, 200, 200);

const FONT: (&str, u32) = ("sans-serif", 15);
const CAPTION: (&str, u32) = ("sans-serif", 17);

fn lerp(a: RGBColor, b: RGBColor, t: f64) -> RGBColor {
    let m = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * t).round() as u8;
    RGBColor(m(a.0, b.0), m(a.1, b.1), m(a.2, b.2))
}

/// Blue (-1) to white (0) to red (+1).
pub fn diverging(v: f64) -> RGBColor {
    let v = v.clamp(-1.0, 1.0);
    if v < 0.0 {
        lerp(WHITE, RGBColor(33, 102, 172), -v)
    } else {
        lerp(WHITE, RGBColor(178, 24, 43), v)
    }
}

/// Dark blue (0) to yellow (1), through teal and green (viridis-like).
pub fn sequential(v: f64) -> RGBColor {
    let stops = [
        RGBColor(68, 1, 84),
        RGBColor(59, 82, 139),
        RGBColor(33, 145, 140),
        RGBColor(94, 201, 98),
        RGBColor(253, 231, 37),
    ];
    let t = v.clamp(0.0, 1.0) * (stops.len() - 1) as f64;
    let i = (t.floor() as usize).min(stops.len() - 2);
    lerp(stops[i], stops[i + 1], t - i as f64)
}

/// An axis label for `v`: whole numbers without decimals (`10`, not `10.0`), magnitudes below
/// 10⁻³ or from 10⁶ up in exponent form (`1e-5`), others to four significant digits (from 1000 up,
/// to the nearest whole number).
pub fn tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || !a.is_finite() {
        return format!("{}", v + 0.0);
    }
    if !(1e-3..1e6).contains(&a) {
        let text = format!("{v:.2e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        return format!("{mantissa}e{exponent}");
    }
    if (v - v.round()).abs() <= 1e-9 * a.max(1.0) {
        return format!("{}", v.round() + 0.0);
    }
    let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A label for an axis of whole numbers (counts, epochs, neurons, frequencies): positions
/// between whole numbers get none, so no label is fractional or repeated.
pub fn whole_tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-6 {
        format!("{}", v.round() + 0.0)
    } else {
        String::new()
    }
}

/// One line of a line chart.
pub struct Line {
    /// Legend label.
    pub label: String,
    /// Points `(x, y)`.
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: RGBColor,
    /// Draw point markers.
    pub markers: bool,
    /// Draw the connecting line.
    pub line: bool,
}

/// Axis options of a line chart.
#[derive(Default)]
pub struct Axes {
    /// Chart title.
    pub title: String,
    /// x label.
    pub x_label: String,
    /// y label.
    pub y_label: String,
    /// x range.
    pub x_range: (f64, f64),
    /// y range.
    pub y_range: (f64, f64),
    /// Logarithmic x.
    pub log_x: bool,
    /// Logarithmic y.
    pub log_y: bool,
    /// x counts something (epochs, neurons): labelled at whole numbers only.
    pub whole_x: bool,
    /// The labelled x positions of a logarithmic x axis (default: the powers of ten).
    pub x_keys: Option<Vec<f64>>,
    /// The legend in the upper right corner (for charts whose curves end low) instead of the
    /// lower right.
    pub legend_upper: bool,
}

/// A band (filled area between two curves) under the lines.
pub struct Band {
    /// Legend label.
    pub label: String,
    /// `(x, low, high)`.
    pub points: Vec<(f64, f64, f64)>,
    /// Colour (drawn translucent).
    pub color: RGBColor,
}

macro_rules! draw_lines {
    ($chart:expr, $axes:expr, $lines:expr, $band:expr) => {{
        let x_tick = |v: &f64| {
            if $axes.whole_x {
                whole_tick(*v)
            } else {
                tick(*v)
            }
        };
        $chart
            .configure_mesh()
            .x_desc($axes.x_label.as_str())
            .y_desc($axes.y_label.as_str())
            .x_label_formatter(&x_tick)
            .y_label_formatter(&|v| tick(*v))
            .x_labels(8)
            .max_light_lines(1)
            .label_style(FONT)
            .axis_desc_style(FONT)
            .draw()?;
        if let Some(band) = $band {
            let mut poly: Vec<(f64, f64)> = band.points.iter().map(|&(x, lo, _)| (x, lo)).collect();
            poly.extend(band.points.iter().rev().map(|&(x, _, hi)| (x, hi)));
            let color = band.color;
            $chart
                .draw_series(std::iter::once(Polygon::new(
                    poly,
                    color.mix(0.25).filled(),
                )))?
                .label(band.label.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 18, y + 5)], color.mix(0.25).filled())
                });
        }
        for line in $lines {
            let color = line.color;
            $chart
                .draw_series(LineSeries::new(
                    line.points
                        .iter()
                        .copied()
                        .filter(|(x, y)| x.is_finite() && y.is_finite()),
                    color.stroke_width(2),
                ))?
                .label(line.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            if line.markers {
                $chart.draw_series(
                    line.points
                        .iter()
                        .filter(|(x, y)| x.is_finite() && y.is_finite())
                        .map(|&p| Circle::new(p, 3, color.filled())),
                )?;
            }
        }
        $chart
            .configure_series_labels()
            .label_font(FONT)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(if $axes.legend_upper {
                SeriesLabelPosition::UpperRight
            } else {
                SeriesLabelPosition::LowerRight
            })
            .draw()?;
    }};
}

/// `range` if plotters can draw it (finite, increasing, positive on a log axis), else a unit
/// range: a NaN or infinite bound (a diverged run's loss) would make plotters loop for ever
/// looking for tick marks.
fn drawable(range: (f64, f64), log: bool) -> (f64, f64) {
    let (lo, hi) = range;
    if lo.is_finite() && hi.is_finite() && lo < hi && (!log || lo > 0.0) {
        range
    } else if log {
        (1.0, 10.0)
    } else {
        (0.0, 1.0)
    }
}

/// A line chart with optional log axes and an optional band.
pub fn line_chart(
    size: (u32, u32),
    axes: &Axes,
    lines: &[Line],
    band: Option<&Band>,
) -> PlotResult<String> {
    line_panels(size, &[(axes, lines, band)])
}

/// Line-chart panels side by side, each `size` wide.
pub fn line_panels(
    size: (u32, u32),
    panels: &[(&Axes, &[Line], Option<&Band>)],
) -> PlotResult<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (size.0 * panels.len() as u32, size.1))
            .into_drawing_area();
        root.fill(&WHITE)?;
        for (area, &(axes, lines, band)) in root.split_evenly((1, panels.len())).iter().zip(panels)
        {
            let mut builder = ChartBuilder::on(area);
            builder
                .caption(axes.title.as_str(), CAPTION)
                .margin(12)
                .x_label_area_size(45)
                .y_label_area_size(65);
            let (x0, x1) = drawable(axes.x_range, axes.log_x);
            let (y0, y1) = drawable(axes.y_range, axes.log_y);
            match (axes.log_x, axes.log_y) {
                (false, false) => {
                    let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1)?;
                    draw_lines!(chart, axes, lines, band);
                }
                (true, false) => {
                    if let Some(keys) = &axes.x_keys {
                        let x = (x0..x1).log_scale().with_key_points(keys.clone());
                        let mut chart = builder.build_cartesian_2d(x, y0..y1)?;
                        draw_lines!(chart, axes, lines, band);
                    } else {
                        let mut chart = builder.build_cartesian_2d((x0..x1).log_scale(), y0..y1)?;
                        draw_lines!(chart, axes, lines, band);
                    }
                }
                (false, true) => {
                    let mut chart = builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale())?;
                    draw_lines!(chart, axes, lines, band);
                }
                (true, true) => {
                    let mut chart =
                        builder.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?;
                    draw_lines!(chart, axes, lines, band);
                }
            }
        }
        root.present()?;
    }
    Ok(svg)
}

/// One heatmap panel: `values[row * cols + col]`, coloured by `color`.
pub struct Heatmap<'a> {
    /// Panel title.
    pub title: String,
    /// Values, row-major.
    pub values: &'a [f64],
    /// Rows (drawn top to bottom).
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Row-axis label.
    pub row_label: String,
    /// Column-axis label.
    pub col_label: String,
}

/// The cells as a PNG `data:` URI, one pixel per cell, row 0 on top.
fn png_uri(map: &Heatmap<'_>, color: &dyn Fn(f64) -> RGBColor) -> PlotResult<String> {
    let rgb: Vec<u8> = map
        .values
        .iter()
        .flat_map(|&v| {
            let c = color(v);
            [c.0, c.1, c.2]
        })
        .collect();
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, map.cols as u32, map.rows as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&rgb)?;
    Ok(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    ))
}

/// Heatmap panels side by side, each value mapped to a colour by `color`. The cells are one
/// raster image per panel (a PNG, one pixel per cell), so a p² grid costs kilobytes, not megabytes.
pub fn heatmaps(
    panel: u32,
    panels: &[Heatmap<'_>],
    color: &dyn Fn(f64) -> RGBColor,
) -> PlotResult<String> {
    let mut svg = String::new();
    let mut images = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (panel * panels.len() as u32, panel + 30))
            .into_drawing_area();
        root.fill(&WHITE)?;
        for (area, map) in root.split_evenly((1, panels.len())).iter().zip(panels) {
            let mut chart = ChartBuilder::on(area)
                .caption(map.title.as_str(), CAPTION)
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(45)
                .build_cartesian_2d(0f64..map.cols as f64, map.rows as f64..0f64)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_label_formatter(&|v| whole_tick(*v))
                .y_label_formatter(&|v| whole_tick(*v))
                .x_desc(map.col_label.as_str())
                .y_desc(map.row_label.as_str())
                .label_style(FONT)
                .axis_desc_style(FONT)
                .draw()?;
            let (x, y) = chart.plotting_area().get_pixel_range();
            images.push_str(&format!(
                "<image x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" preserveAspectRatio=\"none\" \
                 style=\"image-rendering:pixelated\" href=\"{}\"/>\n",
                x.start,
                y.start,
                x.end - x.start,
                y.end - y.start,
                png_uri(map, color)?
            ));
        }
        root.present()?;
    }
    let end = svg.rfind("</svg>").ok_or("plotters wrote no </svg>")?;
    svg.insert_str(end, &images);
    Ok(svg)
}

/// One scatter panel.
pub struct Scatter {
    /// Panel title.
    pub title: String,
    /// x label.
    pub x_label: String,
    /// y label.
    pub y_label: String,
    /// Points with their colours.
    pub points: Vec<(f64, f64, RGBColor)>,
    /// A reference line `y = x` (drawn over the x range), if wanted.
    pub diagonal: bool,
    /// Axis ranges; `None` fits the points.
    pub range: Option<((f64, f64), (f64, f64))>,
    /// Legend entries `(label, colour)`, drawn as text under the title.
    pub legend: Vec<(String, RGBColor)>,
    /// Both axes count something (frequencies): labelled at whole numbers only.
    pub whole: bool,
}

fn fitted_range(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let lo = values.clone().fold(f64::INFINITY, f64::min);
    let hi = values.fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    (lo - pad, hi + pad)
}

/// Scatter panels side by side.
pub fn scatters(panel: (u32, u32), panels: &[Scatter]) -> PlotResult<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (panel.0 * panels.len() as u32, panel.1))
            .into_drawing_area();
        root.fill(&WHITE)?;
        for (area, s) in root.split_evenly((1, panels.len())).iter().zip(panels) {
            let (xr, yr) = s.range.unwrap_or_else(|| {
                (
                    fitted_range(s.points.iter().map(|p| p.0)),
                    fitted_range(s.points.iter().map(|p| p.1)),
                )
            });
            let mut chart = ChartBuilder::on(area)
                .caption(s.title.as_str(), CAPTION)
                .margin(12)
                .x_label_area_size(45)
                .y_label_area_size(60)
                .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)?;
            let axis_tick = |v: &f64| if s.whole { whole_tick(*v) } else { tick(*v) };
            chart
                .configure_mesh()
                .x_desc(s.x_label.as_str())
                .y_desc(s.y_label.as_str())
                .x_label_formatter(&axis_tick)
                .y_label_formatter(&axis_tick)
                .label_style(FONT)
                .axis_desc_style(FONT)
                .draw()?;
            if s.diagonal {
                let (lo, hi) = (xr.0.max(yr.0), xr.1.min(yr.1));
                chart.draw_series(LineSeries::new(
                    [(lo, lo), (hi, hi)],
                    BLACK.mix(0.5).stroke_width(1),
                ))?;
            }
            chart.draw_series(
                s.points
                    .iter()
                    .map(|&(x, y, c)| Circle::new((x, y), 4, c.mix(0.8).filled())),
            )?;
            for (i, (label, c)) in s.legend.iter().enumerate() {
                let c = *c;
                chart
                    .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                    .label(label.as_str())
                    .legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
                let _ = i;
            }
            if !s.legend.is_empty() {
                chart
                    .configure_series_labels()
                    .label_font(("sans-serif", 12))
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .position(SeriesLabelPosition::UpperLeft)
                    .draw()?;
            }
        }
        root.present()?;
    }
    Ok(svg)
}

/// A bar chart of counts at integer x.
pub fn bars(
    size: (u32, u32),
    title: &str,
    x_label: &str,
    y_label: &str,
    counts: &[usize],
) -> PlotResult<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, CAPTION)
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(-0.5f64..counts.len() as f64 - 0.5, 0f64..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_label_formatter(&|v| whole_tick(*v))
            .y_label_formatter(&|v| whole_tick(*v))
            .label_style(FONT)
            .axis_desc_style(FONT)
            .draw()?;
        chart.draw_series(
            counts
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(k, &c)| {
                    Rectangle::new(
                        [(k as f64 - 0.4, 0.0), (k as f64 + 0.4, c as f64)],
                        PALETTE[0].filled(),
                    )
                }),
        )?;
        root.present()?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_short_and_whole_numbers_have_no_decimals() {
        let ticks: Vec<String> = [
            10.0,
            100.0,
            0.0,
            -0.0,
            0.25,
            0.30000000000000004,
            1e-5,
            2.5e-7,
            3e6,
            1234.5678,
        ]
        .iter()
        .map(|&v| tick(v))
        .collect();
        assert_eq!(
            ticks,
            ["10", "100", "0", "0", "0.25", "0.3", "1e-5", "2.5e-7", "3e6", "1235"]
        );
        // From 1000 up, to the nearest whole number: no zero of the integer part is trimmed.
        let large: Vec<String> = [1230.4, 2500.4, 999_999.4, -0.25, 0.001]
            .iter()
            .map(|&v| tick(v))
            .collect();
        assert_eq!(large, ["1230", "2500", "999999", "-0.25", "0.001"]);
        let whole: Vec<String> = [0.0, 0.5, 1.0, 1.5, 2.0]
            .iter()
            .map(|&v| whole_tick(v))
            .collect();
        assert_eq!(whole, ["0", "", "1", "", "2"]);
    }

    #[test]
    fn a_chart_of_infinite_values_is_drawn_and_does_not_hang() {
        let axes = Axes {
            title: "diverged".into(),
            x_range: (1.0, 3.0),
            y_range: (1e-3, f64::INFINITY),
            log_x: true,
            log_y: true,
            ..Axes::default()
        };
        let line = Line {
            label: "loss".into(),
            points: vec![(1.0, 1.0), (2.0, f64::INFINITY), (3.0, f64::NAN)],
            color: PALETTE[0],
            markers: true,
            line: true,
        };
        assert!(line_chart((300, 200), &axes, &[line], None).is_ok());
    }

    #[test]
    fn a_heatmap_is_one_image_in_the_svg() {
        let values: Vec<f64> = (0..12).map(|i| i as f64 / 11.0).collect();
        let map = Heatmap {
            title: "t".into(),
            values: &values,
            rows: 3,
            cols: 4,
            row_label: "r".into(),
            col_label: "c".into(),
        };
        let svg = heatmaps(200, &[map], &sequential).unwrap();
        assert_eq!(svg.matches("<image ").count(), 1);
        assert!(svg.trim_end().ends_with("</svg>"));
        // The pixels themselves: tests/integration/report.rs decodes them against the data.
        assert!(svg.contains("href=\"data:image/png;base64,"));
        assert!(
            svg.matches("<rect").count() < 12,
            "cells drawn as rectangles"
        );
    }
}
