//! The sweep's figures: a grokking phase diagram over two swept hyperparameters and the
//! distribution of grokking epochs across seeds (SVG strings).

use plotters::prelude::*;

use super::{Grid, ModelResult};
use crate::analysis::phases::median;
use crate::operation::Operation;
use crate::report::plot::{sequential, whole_tick, PlotResult, PALETTE};

/// A swept hyperparameter: its name, the grid's values, and a result's value.
struct Axis<'a> {
    name: &'static str,
    values: Vec<f64>,
    /// Labels of the values where they are not numbers (operations, methods).
    names: Option<Vec<String>>,
    of: Box<dyn Fn(&ModelResult) -> f64 + 'a>,
}

/// An operation as a number: its place in [`Operation::BUILT_IN`], or one past them for a custom
/// one.
fn operation_code(operation: &Operation) -> f64 {
    Operation::BUILT_IN
        .iter()
        .position(|o| o == operation)
        .unwrap_or(Operation::BUILT_IN.len()) as f64
}

/// The swept hyperparameters with more than one value, in the order operation, method, label
/// noise, train fraction, weight decay, learning rate, width.
fn swept_axes(grid: &Grid) -> Vec<Axis<'_>> {
    let methods: Vec<String> = grid.methods.iter().map(|m| m.describe()).collect();
    let axes = [
        Axis {
            name: "operation",
            values: grid.operations.iter().map(operation_code).collect(),
            names: Some(
                grid.operations
                    .iter()
                    .map(|o| o.name().to_string())
                    .collect(),
            ),
            of: Box::new(|r| operation_code(&r.operation)),
        },
        Axis {
            name: "method",
            values: (0..methods.len()).map(|i| i as f64).collect(),
            names: Some(methods.clone()),
            of: Box::new(move |r| {
                methods
                    .iter()
                    .position(|m| *m == r.method)
                    .map_or(f64::NAN, |i| i as f64)
            }),
        },
        Axis {
            name: "label noise",
            values: grid.label_noises.clone(),
            names: None,
            of: Box::new(|r| r.label_noise),
        },
        Axis {
            name: "train fraction",
            values: grid.train_fractions.clone(),
            names: None,
            of: Box::new(|r| r.train_fraction),
        },
        Axis {
            name: "weight decay",
            values: grid.weight_decays.clone(),
            names: None,
            of: Box::new(|r| r.weight_decay),
        },
        Axis {
            name: "learning rate",
            values: grid.lrs.clone(),
            names: None,
            of: Box::new(|r| r.lr),
        },
        Axis {
            name: "hidden",
            values: grid.hiddens.iter().map(|&h| h as f64).collect(),
            names: None,
            of: Box::new(|r| r.hidden as f64),
        },
    ];
    axes.into_iter().filter(|a| a.values.len() > 1).collect()
}

/// Colour of a cell whose median model never reached val_acc >= 0.99 within its run.
const NOT_REACHED: RGBColor = RGBColor(205, 205, 205);

/// The median grokking epoch of a cell, counting a model that never grokked as grokking after
/// every epoch; `None` when that median is not reached (half the models or more never grokked).
fn median_grok(cell: &[&ModelResult]) -> Option<f64> {
    let epochs: Vec<f64> = cell
        .iter()
        .map(|r| r.grok_epoch.map_or(f64::INFINITY, |e| e as f64))
        .collect();
    let m = median(&epochs).expect("a cell holds a model");
    m.is_finite().then_some(m)
}

/// The two lines written in a cell: its median grokking epoch (`median_grok(cell)`, which also
/// colours it; "> N" when not reached in N epochs) with how many of its models grokked, and the
/// median final validation accuracy (which tells apart the cells that never grok: memorised,
/// partly generalised, or nearly there).
fn cell_labels(cell: &[&ModelResult], median_grok: Option<f64>) -> [String; 2] {
    let grokked = cell.iter().filter(|m| m.grok_epoch.is_some()).count();
    let accuracies: Vec<f64> = cell.iter().map(|m| m.val_acc).collect();
    let val_acc = median(&accuracies).expect("a cell holds a model");
    let epoch = median_grok.map_or_else(
        || format!("> {}", cell.iter().map(|m| m.epochs).max().unwrap_or(0)),
        |m| format!("{m:.0}"),
    );
    [
        format!("{epoch} ({grokked}/{})", cell.len()),
        format!("val {val_acc:.3}"),
    ]
}

/// The colour scale beside the phase diagram: 0 to `top` epochs, then the not-reached colour.
fn colour_scale<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    top: f64,
) -> PlotResult<()>
where
    DB::ErrorType: 'static,
{
    let (scale, key) = area.split_vertically(area.dim_in_pixel().1.saturating_sub(55));
    let mut chart = ChartBuilder::on(&scale)
        .margin_top(40)
        .margin_bottom(5)
        .margin_right(10)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..1.0, 0f64..top)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc("median epoch")
        .y_label_formatter(&|v| whole_tick(*v))
        .label_style(("sans-serif", 13))
        .draw()?;
    let steps = 64;
    chart.draw_series((0..steps).map(|i| {
        let (lo, hi) = (i as f64 / steps as f64, (i + 1) as f64 / steps as f64);
        Rectangle::new(
            [(0.0, lo * top), (1.0, hi * top)],
            sequential((lo + hi) / 2.0).filled(),
        )
    }))?;
    key.draw(&Rectangle::new([(50, 8), (70, 28)], NOT_REACHED.filled()))?;
    key.draw(&Text::new("not", (74, 6), ("sans-serif", 13)))?;
    key.draw(&Text::new("reached", (74, 21), ("sans-serif", 13)))?;
    Ok(())
}

/// The phase diagram: median grokking epoch (over seeds and any further swept values) in each
/// cell of the first two swept hyperparameters (one row if only one is swept), with the number
/// of models that grokked and their median final validation accuracy, and a colour scale.
/// Cells whose median is not reached have a colour of their own. `None` when no hyperparameter
/// but the seed is swept or nothing ran.
pub fn phase_diagram_svg(grid: &Grid, results: &[ModelResult]) -> Option<String> {
    let mut axes = swept_axes(grid).into_iter();
    let x = axes.next()?;
    let y = axes.next();
    let rows = y.as_ref().map_or(1, |y| y.values.len());
    let cols = x.values.len();
    let mut cells = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        for c in 0..cols {
            let cell: Vec<&ModelResult> = results
                .iter()
                .filter(|m| (x.of)(m) == x.values[c])
                .filter(|m| y.as_ref().is_none_or(|y| (y.of)(m) == y.values[r]))
                .collect();
            cells.push(cell);
        }
    }
    if cells.iter().all(Vec::is_empty) {
        return None;
    }
    let medians: Vec<Option<f64>> = cells
        .iter()
        .map(|cell| {
            if cell.is_empty() {
                None
            } else {
                median_grok(cell)
            }
        })
        .collect();
    let top = medians.iter().flatten().copied().fold(1.0, f64::max);
    let title = format!(
        "Grokking epoch (median; val_acc >= 0.99), {}{}",
        x.name,
        y.as_ref()
            .map_or(String::new(), |y| format!(" x {}", y.name))
    );
    let mut svg = String::new();
    let drawn = (|| -> PlotResult<()> {
        let width = 140 + 110 * cols as u32 + 120;
        let root = SVGBackend::with_string(&mut svg, (width, 120 + 70 * rows.max(2) as u32))
            .into_drawing_area();
        root.fill(&WHITE)?;
        let (main, scale) = root.split_horizontally(width - 120);
        let mut chart = ChartBuilder::on(&main)
            .caption(title.as_str(), ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..cols as f64, rows as f64..0f64)?;
        let label = |axis: Option<&Axis>, v: f64| {
            let i = v.floor() as usize;
            match axis {
                Some(axis) if (v - i as f64 - 0.5).abs() < 1e-9 && i < axis.values.len() => axis
                    .names
                    .as_ref()
                    .map_or_else(|| format!("{}", axis.values[i]), |n| n[i].clone()),
                _ => String::new(),
            }
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(2 * cols + 1)
            .y_labels(2 * rows + 1)
            .x_label_formatter(&|v| label(Some(&x), *v))
            .y_label_formatter(&|v| label(y.as_ref(), *v))
            .x_desc(x.name)
            .y_desc(y.as_ref().map_or("", |y| y.name))
            .label_style(("sans-serif", 14))
            .draw()?;
        for (i, (cell, median)) in cells.iter().zip(&medians).enumerate() {
            if cell.is_empty() {
                continue;
            }
            let (r, c) = ((i / cols) as f64, (i % cols) as f64);
            let (fill, ink) = match median {
                // Light text on the dark end of the colour scale.
                Some(m) => (
                    sequential(m / top),
                    if m / top < 0.45 { WHITE } else { BLACK },
                ),
                None => (NOT_REACHED, BLACK),
            };
            chart.draw_series(std::iter::once(Rectangle::new(
                [(c, r), (c + 1.0, r + 1.0)],
                fill.filled(),
            )))?;
            for (line, text) in cell_labels(cell, *median).into_iter().enumerate() {
                chart.draw_series(std::iter::once(Text::new(
                    text,
                    (c + 0.15, r + 0.35 + 0.3 * line as f64),
                    ("sans-serif", 14).into_font().color(&ink),
                )))?;
            }
        }
        colour_scale(&scale, top)?;
        root.present()?;
        Ok(())
    })();
    drawn.ok().map(|_| svg)
}

/// A histogram of grokking epochs across all models (those that never grokked counted apart,
/// in the title). `None` if no model grokked.
pub fn grok_epoch_distribution_svg(results: &[ModelResult]) -> Option<String> {
    let epochs: Vec<usize> = results.iter().filter_map(|r| r.grok_epoch).collect();
    let max = *epochs.iter().max()?;
    let min = *epochs.iter().min()?;
    let width = ((max - min) / 20).max(1);
    let bins = (max - min) / width + 1;
    let mut counts = vec![0usize; bins];
    for e in &epochs {
        counts[(e - min) / width] += 1;
    }
    let never = results.len() - epochs.len();
    let title = format!(
        "Grokking epochs of {} models ({never} never reached val_acc >= 0.99)",
        results.len()
    );
    let mut svg = String::new();
    let drawn = (|| -> PlotResult<()> {
        let root = SVGBackend::with_string(&mut svg, (760, 380)).into_drawing_area();
        root.fill(&WHITE)?;
        let top = *counts.iter().max().unwrap_or(&1) as f64 * 1.15;
        let lo = min as f64;
        let hi = (min + bins * width) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(title.as_str(), ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(lo..hi, 0f64..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("first epoch with val_acc >= 0.99")
            .y_desc("models")
            .x_label_formatter(&|v| whole_tick(*v))
            .y_label_formatter(&|v| whole_tick(*v))
            .label_style(("sans-serif", 14))
            .draw()?;
        chart.draw_series(counts.iter().enumerate().map(|(i, &n)| {
            let x0 = (min + i * width) as f64;
            Rectangle::new(
                [(x0, 0.0), (x0 + width as f64, n as f64)],
                PALETTE[0].filled(),
            )
        }))?;
        root.present()?;
        Ok(())
    })();
    drawn.ok().map(|_| svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(grok_epoch: Option<usize>, val_acc: f64) -> ModelResult {
        ModelResult {
            index: 0,
            seed: 1,
            operation: Operation::Add,
            p: 7,
            hidden: 4,
            train_fraction: 0.5,
            weight_decay: 1.0,
            lr: 1e-3,
            label_noise: 0.0,
            method: "adamw(β 0.9, 0.999)".into(),
            epochs: 300,
            grok_epoch,
            train_loss: 0.0,
            val_loss: 0.0,
            train_acc: 1.0,
            val_acc,
            steady_epoch_seconds: None,
        }
    }

    #[test]
    fn a_cell_shows_median_grok_epoch_count_and_median_val_acc() {
        let (a, b, c) = (
            result(Some(40), 0.996),
            result(None, 0.4),
            result(Some(100), 0.991),
        );
        // Epochs 40, 100 and 300 (never grokked: the run length); accuracies 0.4, 0.991, 0.996.
        let cell = [&a, &b, &c];
        assert_eq!(
            cell_labels(&cell, median_grok(&cell)),
            ["100 (2/3)", "val 0.991"]
        );
        // An even count takes the mean of the middle two.
        let d = result(Some(60), 0.999);
        let cell = [&a, &b, &c, &d];
        assert_eq!(median_grok(&cell), Some(80.0));
        // Half the models never grokked: the median is not reached in the run's 300 epochs.
        let cell = [&a, &b];
        assert_eq!(median_grok(&cell), None);
        assert_eq!(
            cell_labels(&cell, median_grok(&cell)),
            ["> 300 (1/2)", "val 0.698"]
        );
    }
}
