//! The report's page: `page.html`, a template rendered with minijinja, which escapes every value
//! it inserts (HTML auto-escaping, chosen by the template's `.html` name).

use minijinja::{context, Environment};
use serde::Serialize;

use super::{
    figures::{opt, pct, Figure},
    Analysis,
};
use crate::error::{Error, Result};

const TEMPLATE: &str = include_str!("page.html");

/// A figure as the page shows it.
#[derive(Serialize)]
struct Entry<'a> {
    id: &'a str,
    file: &'a str,
    title: &'a str,
    caption: &'a str,
}

/// The summary table: (label, value) rows.
fn summary(a: &Analysis) -> Vec<(&'static str, String)> {
    let grok = a.grok_epoch.map_or_else(
        || match a.trained_epochs {
            Some(n) => format!("not reached in {n} epochs"),
            None => "no training history given".into(),
        },
        |g| g.to_string(),
    );
    let mut rows = vec![("operation", a.operation.formula())];
    if let Some(method) = &a.config.method {
        rows.push(("method of the step", method.describe()));
    }
    rows.extend([
        (
            "coordinates of the fits",
            format!("{} (period m = {})", a.basis, a.m),
        ),
        (
            "mean R² of the cosine fits: these coordinates / identity",
            format!("{:.3} / {:.3}", a.mean_r2, a.mean_r2_identity),
        ),
        ("accuracy, all pairs", pct(a.accuracy_full)),
        ("accuracy, validation", pct(a.accuracy_val)),
        ("grok epoch (validation accuracy ≥ 99%)", grok),
        ("distinct frequencies", a.histogram.distinct.to_string()),
        (
            "neurons whose 3 frequencies agree",
            pct(a.phases.all_freq_agree),
        ),
        (
            "phase-sum law, median |gap|",
            format!("{} rad", opt(a.phases.median_gap, 3)),
        ),
        ("all neurons replaced by cosines", pct(a.sweep.all_replaced)),
        (
            "k-means vs frequency (ARI): fc1 / fc2 / activations",
            format!(
                "{:.3} / {:.3} / {:.3}",
                a.fc1.ari_vs_freq, a.fc2.ari_vs_freq, a.activations.ari_vs_freq
            ),
        ),
    ]);
    rows
}

/// `report.html` for the analysis `a` and its figures (written under `figures/`).
///
/// # Errors
/// [`Error::Analysis`] if the template fails to render (a defect of this crate, not of the input).
pub(super) fn render(a: &Analysis, figures: &[Figure]) -> Result<String> {
    let entries: Vec<Entry<'_>> = figures
        .iter()
        .map(|f| Entry {
            id: f.file.trim_end_matches(".svg"),
            file: f.file,
            title: f.title,
            caption: &f.caption,
        })
        .collect();
    let fail = |e: minijinja::Error| Error::Analysis {
        what: "report page",
        reason: e.to_string(),
    };
    let mut env = Environment::new();
    env.add_template("report.html", TEMPLATE).map_err(fail)?;
    let page = env
        .get_template("report.html")
        .map_err(fail)?
        .render(context! {
            p => a.p,
            operation => a.operation.formula(),
            hidden => a.d_hidden,
            summary => summary(a),
            figures => entries,
        })
        .map_err(fail)?;
    Ok(page + "\n")
}
